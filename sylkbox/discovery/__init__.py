"""sylkbox.discovery"""

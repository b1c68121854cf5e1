"""sylkbox.conference"""

"""sylkbox.sip"""

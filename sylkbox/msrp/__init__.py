"""sylkbox.msrp"""

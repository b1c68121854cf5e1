"""sylkbox.gateways"""

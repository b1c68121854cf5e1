"""sylkbox.webui"""

"""sylkbox.media: the media worker (a child process) and its control channel.

The main process only needs :mod:`sylkbox.media.control` (typed commands and events) and
:mod:`sylkbox.media.supervisor` (``MediaSupervisor``); the other modules run in the worker.
"""

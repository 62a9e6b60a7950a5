"""The process: composition of the parts (``compose``), gunicorn (``server``) and systemd notify."""

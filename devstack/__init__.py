"""What `make run` (manage.py dev) is made of: the supervisor and the start-up sequence."""

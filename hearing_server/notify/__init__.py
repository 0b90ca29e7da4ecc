"""Notifying parties by e-mail and SMS: the messages, the two senders, and the delivery queue's worker."""

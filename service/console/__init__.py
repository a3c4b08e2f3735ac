"""The reviewers' console: server-rendered pages of the editorial workflow, at /console."""

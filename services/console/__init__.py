"""The analyst console: a web page to review the cases that alerts open (``fraudops console``)."""

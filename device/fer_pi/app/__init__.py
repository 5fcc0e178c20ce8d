"""The app: the command line, the settings and their words, and the composition root that
builds and runs everything from them."""

package main

// Replaced by the Makefile with the collector release it builds against.
const version = "dev"

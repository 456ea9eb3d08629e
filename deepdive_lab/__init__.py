"""deepdive-lab's entry point: the command line wires the engine (`lab`) and the app (`screens`)."""

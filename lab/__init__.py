"""deepdive-lab's headless engine.

Models (llama.cpp and transformers backends behind one protocol), tokenizers, sampling,
the model catalogue. Imports no UI library; torch, transformers and llama_cpp are
imported lazily by the backend that needs them.
"""

__version__ = "0.1.0"

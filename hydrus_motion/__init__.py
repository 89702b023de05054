"""hydrus-motion: videos -> scene cuts -> clips -> Hydrus review -> motion-module finetune.

Importing this package is cheap on purpose: nothing heavy (torch, onnxruntime, OpenCV)
is imported until the stage that needs it runs.
"""

__version__ = "0.1.0"

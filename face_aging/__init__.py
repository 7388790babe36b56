"""face_aging: TensorFlow 2 / Keras reproductions of the CAAE and PAGAN face age-progression GANs.

Importing the package has no side effects: no flags are defined, no devices are touched and no files are written.
"""

__version__ = "0.1.0"

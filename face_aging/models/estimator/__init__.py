"""The age-and-gender estimator: a small CNN trained here on UTKFace that says, for a face whose file name and flags
do not, whether to age it as a man or a woman and how old it is now (test mode, the page, residual aging's own age).
It is the package's own model, never one of --eval's judges (docs/estimator.md)."""

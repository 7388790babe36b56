"""Finding, aligning and pasting back faces in ordinary photos (test mode on your own pictures)."""

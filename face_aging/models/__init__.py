"""What every model shares: the interface test mode, --eval, --export, --serve and videos age faces through
(ager.py) and the image conversions of its exported graphs (serving.py). Each model implements it in its own
package (face_aging/models/caae, face_aging/models/pagan)."""

"""An identity network trained here by instance discrimination: the utkface128 recipe's identity term for PAGAN
(docs/PAGAN.md, Differences; docs/pagan_recipe.md)."""

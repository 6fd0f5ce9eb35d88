import os

# sklearn's common checks skip their array-API input check unless this is set before
# scipy is imported; with it, every common check runs.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

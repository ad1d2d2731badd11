"""Limits on user input, in one place so pages can show them when they are hit."""

MAX_UPLOAD_BYTES = 200 * 1024**2  # one uploaded file
MAX_IMAGE_PIXELS = 40_000_000  # one decoded image (width × height)
MAX_ZIP_UNCOMPRESSED_BYTES = 1024**3  # a data-set archive, summed over members
MAX_ZIP_FILES = 50_000  # members of a data-set archive
MAX_TRAIN_SECONDS = 600  # estimated time above which the Train button asks to shrink the job
MAX_DATASET_BYTES = 4 * 1024**3  # float32 pixels of a whole data set after resizing

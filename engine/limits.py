"""Limits on user input, in one place so pages can show them when they are hit."""

MAX_UPLOAD_BYTES = 200 * 1024**2  # one uploaded file
MAX_IMAGE_PIXELS = 40_000_000  # one decoded image (width × height)
MAX_ZIP_UNCOMPRESSED_BYTES = 1024**3  # a data-set archive, summed over members
MAX_ZIP_FILES = 50_000  # members of a data-set archive
MAX_TRAIN_SECONDS = 600  # estimated time above which the Train button asks to shrink the job
MAX_DATASET_BYTES = 4 * 1024**3  # float32 pixels of a whole data set after resizing
MAX_SEARCH_SECONDS = 900  # estimated time of a hyperparameter search; more trials are cut to fit
MAX_TRIALS = 200  # trials of one hyperparameter search
MAX_FOLDS = 10  # k of k-fold cross-validation
MAX_CROSS_VALIDATION_IMAGES = 5000  # training + validation images: k-fold is for the small bundled sets
MAX_AUGMENT_STEPS = 12  # steps of one augmentation pipeline
MAX_ENSEMBLE_MEMBERS = 10  # networks of one ensemble
MAX_QUEUED_JOBS_PER_SESSION = 6  # jobs one browser session may have waiting for a free slot

# Training and data sets
MAX_EPOCHS = 1000  # epochs of one run; MAX_TRAIN_SECONDS (epochs × data size × model) usually binds first
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 4, 256  # pixels, the square side a data set is resized to

# Long experiments: each number is a count of forward passes (or steps) that one job may ask for
MAX_LANDSCAPE_RESOLUTION = 41  # points per side: 41² = 1681 forward passes is the most we ask of a CPU
MAX_LANDSCAPE_LINE_POINTS = 201  # points of a 1-D slice
MAX_LANDSCAPE_IMAGES = 4096  # images every landscape point is evaluated on
MAX_OCCLUSION_POSITIONS = 4096  # patch positions of one occlusion scan (64 × 64), one forward pass each
MAX_FEATURE_VIS_STEPS = 2000  # gradient-ascent steps of one feature visualization
MAX_FEATURE_VIS_SIZE = 512  # pixels, the side of a visualized image
MAX_ATTACK_STEPS = 1000  # PGD iterations
MAX_IG_STEPS = 512  # Integrated Gradients path points
MAX_SMOOTHGRAD_SAMPLES = 256  # SmoothGrad noisy copies

# Small demos: kept small so every step answers at once
MIN_TOY_POINTS, MAX_TOY_POINTS = 20, 2000  # 2-D points: enough to see a boundary; a full-batch step well under 1 ms
MAX_TOY_NOISE = 1.0
MAX_TOY_HIDDEN_LAYERS = 4
MAX_TOY_UNITS = 16  # units per hidden layer
MAX_TOY_RESOLUTION = 300  # decision-grid points per side
MAX_OWN_POINTS = 200  # points a user adds by hand, beside the generated ones
MAX_PATH_STEPS = 1000  # optimizer steps on a 2-D surface
MAX_SURFACE_GRID = 301  # points per side of a surface's contour grid
MAX_LR_RANGE_STEPS = 1000  # steps of a learning-rate range test
MAX_MINIBATCH_REPEATS = 200  # gradient samples per batch size
MAX_FLOW_DEPTH, MAX_FLOW_WIDTH, MAX_FLOW_BATCH = 50, 1024, 512  # the gradient-flow probe network
MAX_FLOW_BYTES = 512 * 1024**2  # float32 weights + stored activations + gradients of one gradient-flow probe
MAX_FLOW_MACS = 10**10  # forward multiply-accumulates of one probe: ~3× that with backward, seconds on 2 cores
MAX_EXPRESSION_CHARS = 200  # a typed backprop expression
MAX_MARGIN_CLASSES, MAX_MARGIN_POINTS = 1000, 2001  # the loss-versus-margin curves
MAX_DECAY_STEPS = 2000  # optimizer steps of the weight-decay demo
MAX_RUNNING_STATS_STEPS = 2000  # BatchNorm updates traced by running_stats

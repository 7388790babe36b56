"""Synthetic, face-like data set with known ground truth for every person at every age.

`--dataset synthetic` renders these faces itself, so training needs no download. Because each synthetic person has
fixed identity traits and can be rendered at any age, it is also a benchmark of aging: a trained model's output can
be compared with the true older/younger rendering of the same person (`render_face(person, target_age, size)`).

Images imitate UTKFace aligned chips: the face roughly centred and filling most of the frame, a plain background
with a soft gradient, a little neck and shoulders at the bottom. They are drawn with PIL.ImageDraw at 2x (4x below
64 px) and downsampled with LANCZOS; shading is a single blurred mask, so images stay smooth enough for a GAN.

Identity traits (fixed per person): face width/length, jaw shape, skin tone (its range set by race, UTKFace's
0 White, 1 Black, 2 Asian, 3 Indian, 4 Others), eye spacing/size/colour, brows, nose, mouth, ears, smile, hair colour
and style, beard tendency, background and clothes, and personal rates of greying, wrinkling and sagging.

Age cues, each monotonic in age over its range:
  * 0-20: child proportions (rounder, wider face; eyes lower on the face and larger relative to it; high forehead;
    small nose and mouth; short neck) growing into adult ones; sparse light hair on babies; long hair grows in.
  * ~35-85: hair, then brows and beard, grey towards white (per-person onset 32-42 y); some men's hairline recedes.
  * 28+: lines deepen and multiply: nasolabial folds first, then crow's feet, forehead lines, frown lines,
    under-eye lines, neck lines, marionette lines, lip lines and cheek creases.
  * 48+: sagging: jowls, lower chin, eye bags, drooping mouth corners and lids, longer nose and ears; thinner lips.
  * 60+: age spots.
Gender cues: male = shorter hair, heavier and lower brows, squarer wider jaw, thicker neck, beard or stubble shadow
for some men from ~16, receding hairline for some; female = longer hair falling beside the face (or a bob/bun),
thinner arched brows, coloured lips, softer jaw. The hair style index is read per gender, so flipping `gender`
with `dataclasses.replace` gives the same person's counterpart.
"""

import colorsys
import math
import os
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

AGE_MAX = 90

# CAAE's ten age groups (inclusive bounds); make_dataset balances over them.
AGE_GROUPS = ((0, 5), (6, 10), (11, 15), (16, 20), (21, 30), (31, 40), (41, 50), (51, 60), (61, 70), (71, AGE_MAX))

RACE_PROBS = (0.3, 0.2, 0.2, 0.2, 0.1)

# Skin tone range per race, (lightest, darkest) RGB; a person's tone is a point between them.
_SKIN_RANGE = (
    ((248, 214, 192), (212, 160, 128)),  # White
    ((168, 112, 80), (72, 46, 34)),  # Black
    ((246, 212, 178), (205, 156, 112)),  # Asian
    ((206, 150, 108), (128, 84, 56)),  # Indian
    ((228, 180, 138), (158, 110, 74)),  # Others
)

_HAIR_COLOURS = {
    "black": (22, 19, 19), "dark_brown": (52, 36, 28), "brown": (96, 66, 42), "light_brown": (146, 106, 68),
    "blonde": (206, 168, 106), "auburn": (140, 64, 34),
}
# Hair colour probabilities per race, in _HAIR_COLOURS order.
_HAIR_PROBS = (
    (0.10, 0.25, 0.25, 0.15, 0.17, 0.08),
    (0.70, 0.30, 0.0, 0.0, 0.0, 0.0),
    (0.75, 0.25, 0.0, 0.0, 0.0, 0.0),
    (0.65, 0.35, 0.0, 0.0, 0.0, 0.0),
    (0.45, 0.40, 0.15, 0.0, 0.0, 0.0),
)
_EYE_COLOURS = ((58, 38, 24), (96, 62, 34), (112, 96, 52), (74, 104, 66), (70, 110, 160), (112, 122, 132))
_EYE_PROBS_LIGHT = (0.2, 0.2, 0.15, 0.12, 0.23, 0.10)  # White
_EYE_PROBS_DARK = (0.65, 0.30, 0.05, 0.0, 0.0, 0.0)

# Hair styles are read per gender so that flipping gender keeps the index meaningful.
MALE_STYLES = ("crop", "side_part", "curly_short", "crop", "side_part", "swept")
FEMALE_STYLES = ("long", "long_fringe", "bob", "curly_long", "bun", "long")
NUM_HAIR_STYLES = len(MALE_STYLES)

_WHITE_HAIR = np.array((236.0, 234.0, 228.0))


@dataclass(frozen=True)
class Person:
    """Identity traits of one synthetic person; `render_face` adds the age."""
    person_id: int
    gender: int  # 0 male, 1 female (UTKFace)
    race: int  # 0 White, 1 Black, 2 Asian, 3 Indian, 4 Others (UTKFace)
    face_width: float  # scale factors around 1
    face_length: float
    jaw_square: float  # 0 round/pointed .. 1 square
    skin: tuple  # RGB
    eye_spacing: float
    eye_size: float
    eye_colour: tuple
    eye_tilt: float  # outer corner up (+) or down (-), fraction of eye width
    brow_thickness: float
    brow_arch: float
    nose_length: float
    nose_width: float
    mouth_width: float
    lip_thickness: float
    smile: float  # 0 neutral .. 1 smiling
    ear_size: float
    hair_colour: tuple
    hair_style: int  # index into MALE_STYLES / FEMALE_STYLES
    hair_volume: float
    hair_length: float
    part_side: int  # -1 left, +1 right
    grey_onset: float  # age at which greying starts
    recede: float  # 0..1 tendency of the hairline to recede (men only)
    beard: float  # 0 none .. 1 full beard (men only, from ~16)
    wrinkle_rate: float
    sag_rate: float
    spot_rate: float
    background: tuple  # (RGB top/left, RGB bottom/right)
    background_kind: int  # 0 vertical, 1 horizontal, 2 diagonal, 3 radial gradient
    clothes: tuple  # RGB
    detail_seed: int  # places curls and age spots


def _clip01(x):
    return 0.0 if x < 0.0 else 1.0 if x > 1.0 else x


def _smoothstep(a, b, x):
    t = _clip01((x - a) / (b - a))
    return t * t * (3.0 - 2.0 * t)


def _mix(c1, c2, t):
    return tuple(int(round(a + (b - a) * t)) for a, b in zip(c1, c2))


def _scale(c, k):
    return tuple(max(0, min(255, int(round(v * k)))) for v in c)


def _rgba(c, alpha):
    return (c[0], c[1], c[2], max(0, min(255, int(round(alpha)))))


def _hsv(h, s, v):
    return tuple(int(round(255 * c)) for c in colorsys.hsv_to_rgb(h % 1.0, s, v))


def make_person(person_id: int, seed: int = 2017) -> Person:
    """Identity traits of person `person_id`, deterministic in (person_id, seed)."""
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(person_id) & 0xFFFFFFFF, 0x5EED])
    u = rng.uniform
    gender = int(rng.integers(2))
    race = int(rng.choice(5, p=RACE_PROBS))
    light, dark = _SKIN_RANGE[race]
    skin = _mix(light, dark, u(0.0, 1.0) ** 1.2)
    skin = tuple(max(0, min(255, v + int(rng.integers(-6, 7)))) for v in skin)
    hair_colour = list(_HAIR_COLOURS.values())[int(rng.choice(6, p=_HAIR_PROBS[race]))]
    hair_colour = tuple(max(0, min(255, v + int(rng.integers(-8, 9)))) for v in hair_colour)
    eye_probs = _EYE_PROBS_LIGHT if race == 0 else _EYE_PROBS_DARK
    eye_colour = _EYE_COLOURS[int(rng.choice(6, p=eye_probs))]
    bg_h = u(0.0, 1.0)
    bg1 = _hsv(bg_h, u(0.03, 0.35), u(0.35, 0.95))
    bg2 = _hsv(bg_h + u(-0.08, 0.08), u(0.03, 0.35), u(0.30, 0.95))
    clothes = _hsv(u(0.0, 1.0), u(0.1, 0.7), u(0.15, 0.9))
    male = gender == 0
    return Person(
        person_id=int(person_id), gender=gender, race=race,
        face_width=float(u(0.92, 1.08)), face_length=float(u(0.94, 1.06)), jaw_square=float(u(0.0, 1.0)),
        skin=skin, eye_spacing=float(u(0.92, 1.08)), eye_size=float(u(0.88, 1.12)), eye_colour=eye_colour,
        eye_tilt=float(u(-0.06, 0.14) + (0.08 if race == 2 else 0.0)),
        brow_thickness=float(u(0.75, 1.3)), brow_arch=float(u(0.0, 1.0)),
        nose_length=float(u(0.9, 1.12)), nose_width=float(u(0.85, 1.2) + (0.1 if race in (1, 3) else 0.0)),
        mouth_width=float(u(0.88, 1.12)), lip_thickness=float(u(0.8, 1.25) + (0.15 if race == 1 else 0.0)),
        smile=float(u(0.0, 1.0) ** 1.5), ear_size=float(u(0.85, 1.15)),
        hair_colour=hair_colour, hair_style=int(rng.integers(NUM_HAIR_STYLES)),
        hair_volume=float(u(0.8, 1.25)), hair_length=float(u(0.8, 1.2)), part_side=int(rng.choice((-1, 1))),
        grey_onset=float(u(32.0, 42.0)), recede=float(u(0.0, 1.0) ** 1.5 if male else 0.0),
        beard=float(u(0.0, 1.0) if male and u() < 0.55 else 0.0),
        wrinkle_rate=float(u(0.8, 1.2)), sag_rate=float(u(0.8, 1.2)), spot_rate=float(u(0.2, 1.0)),
        background=(bg1, bg2), background_kind=int(rng.integers(4)), clothes=clothes,
        detail_seed=int(rng.integers(2 ** 31)))


# ----------------------------------------------------------------------------------------------------------------------
# Geometry. All coordinates are in units of the image side (0..1); _Canvas converts them to pixels.


class _Geom:
    """Where everything sits for one (person, age); shared by the drawing helpers."""

    def __init__(self, p: Person, age: float):
        age = float(min(max(age, 0.0), AGE_MAX))
        self.age = age
        self.male = p.gender == 0
        s = _clip01(age / 20.0)
        # Faces lengthen until ~20: a little early growth, most of it late in childhood and in adolescence.
        g = 0.35 * (1.0 - (1.0 - s) ** 2) + 0.65 * s * s * (3.0 - 2.0 * s)
        self.g = g
        self.sag = _clip01((age - 48.0) / 40.0) * p.sag_rate
        self.wr = _clip01((age - 28.0) / 52.0) * p.wrinkle_rate
        self.old = _clip01((age - 40.0) / 50.0)
        lerp = lambda child, adult: child + (adult - child) * g  # noqa: E731

        self.cx = 0.5
        self.a = lerp(0.345, 0.290 + (0.008 if self.male else 0.0)) * p.face_width  # half width at the cheekbones
        self.eye_y = lerp(0.53, 0.445)
        self.y_mid = self.eye_y + lerp(0.035, 0.05)  # widest line of the face
        self.y_top = lerp(0.04, 0.075) - 0.02 * (p.face_length - 1.0)  # top of the skull
        self.y_chin = lerp(0.82, 0.885 + (0.008 if self.male else 0.0)) + 0.03 * (p.face_length - 1.0) \
            + 0.025 * self.sag
        square = p.jaw_square * (1.0 if self.male else 0.45) * g
        self.p_jaw = 2.0 + 1.6 * square
        self.taper = lerp(0.05, 0.20 if self.male else 0.27) - 0.10 * square
        self.jowl = 0.075 * self.sag

        # Eyes: larger relative to the face, rounder and lower in a child.
        self.eye_dx = lerp(0.122, 0.118) * p.eye_spacing
        self.eye_w = lerp(0.07, 0.052) * p.eye_size  # half width
        self.eye_h = self.eye_w * lerp(0.62, 0.44) * (1.0 - 0.12 * self.old) * (0.85 if p.race == 2 else 1.0)
        self.iris_r = lerp(0.034, 0.025) * (0.5 + 0.5 * p.eye_size)
        self.eye_tilt = p.eye_tilt * self.eye_w
        self.brow_y = self.eye_y - lerp(0.056, 0.052 if self.male else 0.062) + 0.008 * self.sag
        self.brow_t = (lerp(0.006, 0.0135 if self.male else 0.0085) + 0.002 * self.old) * p.brow_thickness

        nose_len = (lerp(0.075, 0.135) + 0.014 * self.sag) * p.nose_length
        self.nose_y = self.eye_y + nose_len
        self.nose_w = lerp(0.025, 0.038 + (0.003 if self.male else 0.0)) * p.nose_width + 0.004 * self.sag
        self.mouth_y = self.nose_y + (self.y_chin - self.nose_y) * lerp(0.36, 0.33)
        self.mouth_w = lerp(0.046, 0.074) * p.mouth_width
        thin = 1.0 - 0.4 * self.old
        self.lip_up = lerp(0.010, 0.011) * p.lip_thickness * thin
        self.lip_lo = lerp(0.013, 0.015) * p.lip_thickness * thin
        self.smile = p.smile * (1.0 - 0.5 * self.sag)
        self.droop = 0.012 * self.sag

        self.ear_y = self.eye_y + 0.045
        self.ear_h = (lerp(0.07, 0.075) + 0.012 * self.sag) * p.ear_size
        self.ear_w = lerp(0.035, 0.033) * p.ear_size
        self.neck_w = lerp(0.15, 0.185 if self.male else 0.15)

    def half_width(self, y):
        """Half width of the face outline at height y."""
        if y <= self.y_mid:
            t = (self.y_mid - y) / (self.y_mid - self.y_top)
            return self.a * math.sqrt(max(0.0, 1.0 - t * t))
        t = min(1.0, (y - self.y_mid) / (self.y_chin - self.y_mid))
        return self._lower_w(t)

    def _lower_w(self, t):
        p = self.p_jaw
        w = self.a * (max(0.0, 1.0 - t ** p)) ** (1.0 / p) * (1.0 - self.taper * t * t)
        return w + self.jowl * math.exp(-((t - 0.8) / 0.12) ** 2)

    def outline(self, n=22):
        """Closed face outline, skull included, clockwise from the left cheekbone."""
        pts = []
        b = self.y_mid - self.y_top
        for i in range(n + 1):
            th = math.pi * (1.0 - i / n)
            pts.append((self.cx + self.a * math.cos(th), self.y_mid - b * math.sin(th)))
        lower = []
        for i in range(1, n + 1):
            t = i / n
            lower.append((self._lower_w(t), self.y_mid + (self.y_chin - self.y_mid) * t))
        pts += [(self.cx + w, y) for w, y in lower]
        pts += [(self.cx - w, y) for w, y in reversed(lower[:-1])]
        return pts


class _Canvas:
    """The RGB image plus the masks that soft shading needs, drawn together."""

    LIT_DOWN = 4  # the shading mask is smooth, so it is drawn at a quarter of the resolution

    def __init__(self, size, background, kind):
        self.size = size
        self.S = size * (4 if size < 64 else 2)
        S = self.S
        self.img = _background(S, tuple(background[0]), tuple(background[1]), kind).copy()
        self.d = ImageDraw.Draw(self.img)
        self.da = ImageDraw.Draw(self.img, "RGBA")
        self.sharp = Image.new("L", (S, S), 0)  # where shading applies: visible skin
        self.ds = ImageDraw.Draw(self.sharp)
        L = max(8, S // self.LIT_DOWN)
        self.lit = Image.new("L", (L, L), 0)  # 255 = fully lit skin, lower = in shadow
        self.dl = ImageDraw.Draw(self.lit)
        self.L = L
        self.beard = None  # low-resolution beard opacity, made on first use

    def px(self, pts):
        S = self.S
        return [(x * S, y * S) for x, y in pts]

    def lpx(self, pts):
        L = self.L
        return [(x * L, y * L) for x, y in pts]

    def poly(self, pts, fill, sharp=None, lit=None):
        if len(fill) == 4:
            self.da.polygon(self.px(pts), fill=fill)
        else:
            self.d.polygon(self.px(pts), fill=fill)
        if sharp is not None:
            self.ds.polygon(self.px(pts), fill=sharp)
        if lit is not None:
            self.dl.polygon(self.lpx(pts), fill=lit)

    def ellipse(self, cx, cy, rx, ry, fill, sharp=None, lit=None):
        S = self.S
        box = [(cx - rx) * S, (cy - ry) * S, (cx + rx) * S, (cy + ry) * S]
        if len(fill) == 4:
            self.da.ellipse(box, fill=fill)
        else:
            self.d.ellipse(box, fill=fill)
        if sharp is not None:
            self.ds.ellipse(box, fill=sharp)
        if lit is not None:
            L = self.L
            self.dl.ellipse([(cx - rx) * L, (cy - ry) * L, (cx + rx) * L, (cy + ry) * L], fill=lit)

    def lit_ellipse(self, cx, cy, rx, ry, value):
        L = self.L
        self.dl.ellipse([(cx - rx) * L, (cy - ry) * L, (cx + rx) * L, (cy + ry) * L], fill=value)

    def lit_line(self, pts, width, value):
        self.dl.line(self.lpx(pts), fill=value, width=max(1, int(round(width * self.L))))

    def line(self, pts, fill, width):
        w = max(1, int(round(width * self.S)))
        draw = self.da if len(fill) == 4 else self.d
        draw.line(self.px(pts), fill=fill, width=w, joint="curve" if len(pts) > 2 else None)

    def beard_poly(self, pts, value):
        if self.beard is None:
            self.beard = Image.new("L", (self.L, self.L), 0)
            self.db = ImageDraw.Draw(self.beard)
        self.db.polygon(self.lpx(pts), fill=value)

    def beard_ellipse(self, cx, cy, rx, ry, value):
        if self.beard is not None:
            L = self.L
            self.db.ellipse([(cx - rx) * L, (cy - ry) * L, (cx + rx) * L, (cy + ry) * L], fill=value)

    def result(self, beard_colour=None):
        """Downsample, lay the soft beard over the skin, then darken skin where `lit` is below 255.

        Both soft layers are blurred low-resolution masks applied after the LANCZOS downsample: they are smooth,
        so this costs nothing in quality and keeps the expensive full-resolution work to the drawing itself.
        """
        size = self.size
        out = self.img.resize((size, size), Image.LANCZOS)
        if self.beard is not None and beard_colour is not None:
            b = self.beard.filter(ImageFilter.GaussianBlur(max(0.5, self.L * 0.012)))
            out.paste(tuple(beard_colour), (0, 0, size, size), b.resize((size, size), Image.BILINEAR))
        lit = self.lit.filter(ImageFilter.GaussianBlur(max(0.6, self.L * 0.03))).resize((size, size), Image.BILINEAR)
        # `sharp` holds SKIN (not 255) on skin, which scales the shadows' strength.
        dark = ImageChops.multiply(ImageChops.invert(lit), self.sharp.reduce(self.S // size))
        out.paste(ImageChops.multiply(out, _shadow_tint(size)), (0, 0), dark)
        return np.array(out, dtype=np.uint8)


SKIN = 204  # value of skin in the `sharp` mask: full shadow darkens skin by 80% of _shadow_tint's depth


@lru_cache(maxsize=8)
def _shadow_tint(size):
    # Shadows on skin are darker and a touch warmer, not grey.
    return Image.new("RGB", (size, size), (128, 115, 107))


@lru_cache(maxsize=64)
def _background(S, colour1, colour2, kind):
    # Cached because make_dataset renders each person several times in a row.
    c1 = Image.new("RGB", (S, S), colour1)
    c2 = Image.new("RGB", (S, S), colour2)
    return Image.composite(c2, c1, _gradient(S, kind))


@lru_cache(maxsize=32)
def _gradient(S, kind):
    y, x = np.mgrid[0:S, 0:S] / (S - 1.0)
    if kind == 0:
        t = y
    elif kind == 1:
        t = x
    elif kind == 2:
        t = (x + y) / 2.0
    else:
        t = np.clip(np.hypot(x - 0.5, y - 0.4) / 0.75, 0.0, 1.0)
    return Image.fromarray((t * 255).astype(np.uint8), "L")


@lru_cache(maxsize=16)
def _bezier_weights(n):
    return tuple(((1 - i / n) ** 2, 2 * (1 - i / n) * (i / n), (i / n) ** 2) for i in range(n + 1))


def _curve(p0, p1, p2, n=8):
    """Quadratic Bezier from p0 to p2 pulled towards p1."""
    x0, y0 = p0
    x1, y1 = p1
    x2, y2 = p2
    return [(a * x0 + b * x1 + c * x2, a * y0 + b * y1 + c * y2) for a, b, c in _bezier_weights(n)]


def _grey(colour, amount):
    """Hair colour greyed by `amount` (0 own colour .. 1 white), through salt-and-pepper grey."""
    c = np.asarray(colour, dtype=float)
    grey_mid = np.full(3, 0.5 * (c.mean() + 170.0))
    if amount < 0.5:
        out = c + (grey_mid - c) * (amount / 0.5)
    else:
        out = grey_mid + (_WHITE_HAIR - grey_mid) * ((amount - 0.5) / 0.5)
    return tuple(int(round(v)) for v in out)


# ----------------------------------------------------------------------------------------------------------------------
# Drawing.


def _hair_params(p: Person, G: _Geom):
    style = (MALE_STYLES if G.male else FEMALE_STYLES)[p.hair_style % NUM_HAIR_STYLES]
    age = G.age
    grow = _smoothstep(0.0, 3.0, age)  # babies have little hair
    longer = _smoothstep(1.0, 9.0, age)  # long styles grow in during childhood
    grey = _clip01((age - p.grey_onset) / (85.0 - p.grey_onset)) ** 0.9
    colour = _grey(p.hair_colour, grey)
    # Baby hair is thin: lighter and with skin showing through.
    colour = _mix(colour, _mix(p.skin, colour, 0.5), 0.7 * (1.0 - grow))
    recede = p.recede * _smoothstep(28.0, 70.0, age) if G.male else 0.0
    vol = {"crop": 0.018, "side_part": 0.03, "curly_short": 0.045, "swept": 0.04, "long": 0.04,
           "long_fringe": 0.04, "bob": 0.05, "curly_long": 0.07, "bun": 0.018}[style]
    vol = vol * p.hair_volume * (0.35 + 0.65 * grow) * (1.0 - 0.4 * G.old)
    return style, colour, recede, vol, longer, grey


def _hairline(G: _Geom, recede):
    """Hairline across the forehead, left to right, as (x, y) points."""
    hw = G.half_width(G.eye_y - 0.06) * 0.985
    y_c = G.brow_y - (0.19 - 0.025 * G.g) - 0.09 * recede
    y_c = max(y_c, G.y_top + 0.025)
    y_t = G.eye_y - 0.085 + 0.02 * recede
    pts = []
    n = 12
    for i in range(n + 1):
        u = -1.0 + 2.0 * i / n
        y = y_c + (y_t - y_c) * abs(u) ** 2.6
        # Receding temples carve an M.
        y -= 0.07 * recede * math.exp(-((abs(u) - 0.62) / 0.2) ** 2)
        pts.append((G.cx + u * hw, y))
    return pts


def _draw_hair_back(c: _Canvas, p: Person, G: _Geom, hp):
    style, colour, _, vol, longer, _ = hp
    if style not in ("long", "long_fringe", "curly_long"):
        return
    length = G.mouth_y + (0.25 + 0.18 * p.hair_length) * longer
    A = G.a + vol + 0.02
    top = G.y_top - vol
    width_bottom = A + 0.03 * longer + (0.04 if style == "curly_long" else 0.0)
    pts = []
    n = 14
    for i in range(n + 1):
        th = math.pi * (1.0 - i / n)
        pts.append((G.cx + A * math.cos(th), G.y_mid - (G.y_mid - top) * math.sin(th)))
    # Sides fall from the widest point of the head to the ends; curls make them wavy.
    wave = 0.014 if style == "curly_long" else 0.0
    m = 8
    right = []
    for i in range(1, m + 1):
        t = i / m
        y = G.y_mid + (length - 0.03 - G.y_mid) * t
        right.append((G.cx + A + (width_bottom - A) * t + wave * math.sin(t * 13.0), y))
    bottom = [(G.cx + width_bottom - 0.06, length), (G.cx - width_bottom + 0.06, length)]
    left = [(2 * G.cx - x, y) for x, y in reversed(right)]
    c.poly(pts + right + bottom + left, colour)


def _draw_body(c: _Canvas, p: Person, G: _Geom):
    """Shoulders, neck and ears: everything of the person behind the face."""
    sh_y = G.y_chin + 0.10 + 0.04 * (1.0 - G.g)
    c.ellipse(0.5, sh_y + 0.26, 0.46 + 0.06 * G.g, 0.27, p.clothes)
    neck_top = G.y_chin - 0.12
    nw = G.neck_w * (1.0 + 0.08 * G.sag)
    neck_skin = _scale(p.skin, 0.93)
    c.poly([(0.5 - nw, neck_top), (0.5 + nw, neck_top), (0.5 + nw * 1.04, sh_y + 0.02),
            (0.5 - nw * 1.04, sh_y + 0.02)], neck_skin, sharp=SKIN, lit=110)
    c.ellipse(0.5, sh_y + 0.015, nw * 1.04, 0.05, neck_skin, sharp=SKIN, lit=110)
    # Ears sit behind the face outline; a darker inner bowl keeps them readable at 32 px.
    for side in (-1, 1):
        ex = G.cx + side * (G.half_width(G.ear_y) + G.ear_w * 0.45)
        c.ellipse(ex, G.ear_y, G.ear_w, G.ear_h, p.skin, sharp=SKIN, lit=150)
        c.ellipse(ex + side * 0.006, G.ear_y, G.ear_w * 0.5, G.ear_h * 0.6, _scale(p.skin, 0.8))


def _draw_face(c: _Canvas, p: Person, G: _Geom):
    outline = G.outline()
    c.poly(outline, p.skin, sharp=SKIN, lit=255)
    # Light from the upper left: the far cheek and jaw turn away from it.
    c.lit_ellipse(G.cx + G.a * 0.95, G.y_mid + 0.06, G.a * 0.5, 0.3, 222)
    if G.age < 10:  # rosy cheeks of small children
        pink = _mix(p.skin, (235, 120, 120), 0.35)
        alpha = 55 * (1.0 - G.age / 10.0)
        for k in (1.0, 0.7):
            for side in (-1, 1):
                c.ellipse(G.cx + side * G.a * 0.58, G.nose_y - 0.01, 0.055 * k, 0.04 * k, _rgba(pink, alpha))


def _draw_beard(c: _Canvas, p: Person, G: _Geom):
    """Beard or stubble as a soft opacity mask; returns its colour (None without one)."""
    if not G.male or p.beard <= 0.0:
        return None
    amount = p.beard * _smoothstep(15.0, 23.0, G.age)
    if amount <= 0.0:
        return None
    full = p.beard > 0.65
    # Beards grey a few years behind the scalp.
    colour = _grey(p.hair_colour, _clip01((G.age - p.grey_onset - 4.0) / (85.0 - p.grey_onset)) ** 0.9)
    out = 0.012 if full else 0.0
    y_s = G.ear_y + 0.005
    t_s = (y_s - G.y_mid) / (G.y_chin - G.y_mid)
    jaw = []
    n = 10
    for i in range(n + 1):
        t = t_s + (1.0 - t_s) * i / n
        jaw.append((G.cx + G._lower_w(t) + out * (1 - t) + 0.003, G.y_mid + (G.y_chin - G.y_mid) * t + out * t * t))
    mw, ny = G.mouth_w, G.nose_y
    cheek = _curve((G.cx + G.half_width(y_s) - 0.02, y_s - 0.02),
                   (G.cx + mw * 1.9, ny + 0.005), (G.cx + mw * 1.3, G.mouth_y - 0.01), 6)
    tache = [(G.cx + mw * 1.0, ny + 0.024), (G.cx + mw * 0.3, ny + 0.014), (G.cx, ny + 0.016)]
    right = cheek + tache
    left = [(2 * G.cx - x, y) for x, y in reversed(right)]
    jaw_left = [(2 * G.cx - x, y) for x, y in reversed(jaw[:-1])]
    value = (240 if full else 105) * (0.3 + 0.7 * amount)
    c.beard_poly(jaw + jaw_left + list(reversed(left))[1:] + list(reversed(right))[1:], int(value))
    # Lips stay visible through the beard.
    c.beard_ellipse(G.cx, G.mouth_y + G.lip_lo * 0.7, G.mouth_w * 0.95, G.lip_up + G.lip_lo * 1.1 + 0.004, 0)
    return colour


def _draw_hair_front(c: _Canvas, p: Person, G: _Geom, hp):
    style, colour, recede, vol, longer, _ = hp
    hline = _hairline(G, recede)
    bald = _smoothstep(0.4, 1.0, recede)
    A = G.a + vol
    B = G.y_mid - G.y_top + vol * 1.3 * (1.0 - bald)
    if style in ("bob", "long", "long_fringe", "curly_long"):
        y_end = G.y_mid + (G.mouth_y - G.y_mid) * (0.4 + 0.6 * longer) if style == "bob" else G.y_mid + 0.02
        inset = 0.03 * longer if style == "bob" else 0.018
    elif style == "bun":
        y_end, inset = G.eye_y, 0.004
    else:
        y_end, inset = G.eye_y + 0.035, 0.01  # sideburns down to the ears
    phi_end = math.asin(max(-0.95, min(0.95, (G.y_mid - y_end) / B)))
    outer = []
    n = 22
    for i in range(n + 1):
        th = (math.pi - phi_end) + (2 * phi_end - math.pi) * i / n
        outer.append((G.cx + A * math.cos(th), G.y_mid - B * math.sin(th)))
    # Inner edge along the right side of the face from y_end up to the temple, then hairline, then left side down.
    y_t = hline[-1][1]
    side = []
    for i in range(5):
        y = y_end + (y_t - y_end) * i / 4
        side.append((G.cx + max(0.0, G.half_width(y) - inset), y))
    pts = outer + side + list(reversed(hline)) + [(2 * G.cx - x, y) for x, y in reversed(side)]
    c.poly(pts, colour, sharp=0, lit=40)
    if style in ("curly_short", "curly_long"):
        rng = np.random.default_rng(p.detail_seed + 3)
        r = 0.03 if style == "curly_short" else 0.04
        for i in range(14):
            th = (math.pi - phi_end) + (2 * phi_end - math.pi) * (i + rng.uniform(0.2, 0.8)) / 14
            c.ellipse(G.cx + (A - r * 0.4) * math.cos(th), G.y_mid - (B - r * 0.4) * math.sin(th), r, r, colour)
    if style == "bun":
        c.ellipse(G.cx, G.y_top - vol - 0.01, 0.07 * (0.5 + 0.5 * longer), 0.055, colour)
    # A soft sheen on the hair, darker strands would be noise a GAN cannot reproduce.
    sheen = _mix(colour, (255, 255, 255), 0.22)
    arc = [(G.cx + A * 0.8 * math.cos(th), G.y_mid - B * 0.9 * math.sin(th)) for th in np.linspace(2.3, 1.6, 6)]
    c.line(arc, _rgba(sheen, 70), 0.014)
    if recede > 0.4:
        # The crown thins out: the bare skull shows from the forehead up, hair stays at the sides.
        rx = G.a * (0.5 + 0.42 * bald)
        y_chord = min(y for _, y in hline) + 0.02
        b = G.y_mid - G.y_top
        arc = [(G.cx + x, G.y_mid - b * math.sqrt(max(0.0, 1.0 - (x / G.a) ** 2)))
               for x in np.linspace(-rx, rx, 13)]
        c.poly(arc + [(G.cx + rx * 0.9, y_chord + 0.01), (G.cx - rx * 0.9, y_chord + 0.01)],
               _mix(p.skin, colour, 0.06), sharp=SKIN, lit=235)
    fringe = style == "long_fringe" or (style in ("side_part", "swept") and recede < 0.3)
    if fringe:
        hw = G.half_width(G.brow_y - 0.04)
        if style == "long_fringe":
            y_f = G.brow_y - 0.03
            bottom = [(G.cx + hw * u, y_f - 0.012 * abs(math.sin(u * 9))) for u in np.linspace(0.95, -0.95, 9)]
            top_pts = [(G.cx - hw, hline[0][1] - 0.04), (G.cx, hline[6][1] - 0.04), (G.cx + hw, hline[-1][1] - 0.04)]
            c.poly(top_pts + bottom, colour, sharp=0, lit=20)
        else:
            # A swept lock from the parting to the far temple.
            s = p.part_side
            x_part = G.cx + s * 0.25 * G.a
            y_low = hline[6][1] + (0.045 if style == "swept" else 0.03) * (0.4 + 0.6 * G.g)
            pts = [(x_part, hline[6][1] - 0.05), (x_part, hline[6][1] + 0.005),
                   (G.cx - s * 0.2 * G.a, y_low), (G.cx - s * hw * 0.97, hline[0 if s > 0 else -1][1] + 0.01),
                   (G.cx - s * hw * 1.05, hline[0 if s > 0 else -1][1] - 0.05)]
            c.poly(pts, colour, sharp=0, lit=30)


def _draw_eyes(c: _Canvas, p: Person, G: _Geom, brow_colour):
    skin = p.skin
    lid = _scale(skin, 0.9)
    lash = _scale(_mix(skin, (20, 15, 15), 0.8), 1.0)
    white = _mix((238, 234, 228), skin, 0.12)
    hood = 0.25 * G.sag  # lids droop with age, covering more of the iris
    for side in (-1, 1):
        ex, ey = G.cx + side * G.eye_dx, G.eye_y
        w, h = G.eye_w, G.eye_h
        tilt = G.eye_tilt
        inner = (ex - side * w, ey + 0.1 * h)
        outer = (ex + side * w, ey - tilt + 0.1 * h + 0.15 * G.sag * h)
        c.lit_ellipse(ex, ey - 0.2 * h, w * 1.35, h * 2.0, 215 - int(40 * G.old))
        upper = _curve(inner, (ex - side * 0.1 * w, ey - 2.1 * h), outer, 8)
        lower = _curve(outer, (ex + side * 0.1 * w, ey + 1.25 * h), inner, 8)
        c.poly(upper + lower[1:-1], white)
        ir = G.iris_r
        iy = ey + 0.08 * h
        c.ellipse(ex, iy, ir, ir, p.eye_colour)
        c.ellipse(ex, iy, ir * 0.45, ir * 0.45, (18, 14, 14))
        c.ellipse(ex - 0.3 * ir, iy - 0.35 * ir, ir * 0.22, ir * 0.22, (250, 250, 250))
        # Lids cover the top and bottom of the iris.
        lid_up = _curve(inner, (ex - side * 0.1 * w, ey - (2.1 - 1.6 * hood) * h), outer, 8)
        cover_up = [(x, y - 0.6 * h - 0.03) for x, y in reversed(upper)]
        c.poly(lid_up + cover_up, lid)
        cover_lo = [(x, y + 0.6 * h + 0.02) for x, y in reversed(lower)]
        c.poly(lower + cover_lo, skin)
        c.line(lid_up, lash, 0.006 + 0.002 * (1 - G.g) + (0.002 if not G.male else 0.0))
        c.line(lower, _rgba(_scale(skin, 0.6), 90), 0.003)
        if p.race != 2 or G.age > 45:  # a lid crease; monolids have none until the lid sags
            crease = [(x, y - 0.55 * h - 0.006 + hood * 0.4 * h) for x, y in upper[1:-1]]
            c.line(crease, _rgba(_scale(skin, 0.62), 110), 0.003)
        # Brows: heavier and lower for men, thinner and arched for women.
        bx0, bx1 = ex - side * 1.15 * w, ex + side * 1.25 * w
        arch = (0.010 + 0.012 * p.brow_arch) * (0.7 if G.male else 1.3)
        by = G.brow_y
        t = G.brow_t
        top = _curve((bx0, by - 0.35 * t), (ex, by - arch - 1.1 * t), (bx1, by + 0.004), 8)
        bottom = _curve((bx1, by + 0.004 + 0.2 * t), (ex, by - arch + 0.6 * t), (bx0, by + 0.7 * t), 8)
        c.poly(top + bottom, brow_colour)


def _draw_nose(c: _Canvas, p: Person, G: _Geom):
    skin = p.skin
    ny, nw = G.nose_y, G.nose_w
    line = _rgba(_scale(skin, 0.55), 150)
    # Shadow down one side of the bridge and under the tip (light comes from the upper left).
    c.lit_line([(G.cx + 0.02, G.eye_y - 0.005), (G.cx + nw * 0.7, ny - 0.01)], 0.02, 205)
    c.lit_ellipse(G.cx, ny + 0.012, nw * 0.9, 0.012, 170)
    for side in (-1, 1):
        c.line(_curve((G.cx + side * 0.25 * nw, ny + 0.008), (G.cx + side * 1.15 * nw, ny + 0.01),
                      (G.cx + side * 0.85 * nw, ny - 0.022), 6), line, 0.0045)
        c.ellipse(G.cx + side * 0.42 * nw, ny + 0.004, 0.28 * nw, 0.15 * nw, _scale(skin, 0.45))


def _draw_mouth(c: _Canvas, p: Person, G: _Geom):
    skin = p.skin
    my, mw = G.mouth_y, G.mouth_w * (1.0 + 0.12 * G.smile)
    lift = 0.012 * G.smile - G.droop
    if G.male:
        lip = _mix(skin, (170, 90, 85), 0.35 if p.race in (0, 2) else 0.2)
        lip = _scale(lip, 0.9)
    else:
        lip = _mix(skin, (200, 60, 80) if p.race in (0, 2, 4) else (140, 50, 60), 0.62 * G.g + 0.25 * (1 - G.g))
    if G.age < 12:
        lip = _mix(skin, (220, 110, 110), 0.35)
    left, right = (G.cx - mw, my - lift), (G.cx + mw, my - lift)
    mid_line = _curve(left, (G.cx, my + 0.018 * G.smile + 0.004), right, 10)
    up = G.lip_up
    upper = [left, (G.cx - mw * 0.55, my - up * 0.9), (G.cx - mw * 0.18, my - up * 1.25), (G.cx, my - up * 0.85),
             (G.cx + mw * 0.18, my - up * 1.25), (G.cx + mw * 0.55, my - up * 0.9), right]
    c.poly(upper + list(reversed(mid_line))[1:-1], lip)
    lower = _curve(right, (G.cx, my + G.lip_lo * 2.3 + 0.01 * G.smile), left, 10)
    c.poly(mid_line + lower[1:-1], _scale(lip, 1.06))
    c.line(mid_line, _scale(lip, 0.5), 0.005)
    c.lit_ellipse(G.cx, my + G.lip_lo * 2.2, mw * 0.55, 0.012, 185)
    for side, pt in ((-1, left), (1, right)):  # dimples at the corners
        c.line([(pt[0] + side * 0.004, pt[1] - 0.004), (pt[0] + side * 0.008, pt[1] + 0.006)],
               _rgba(_scale(skin, 0.6), 80 + 60 * G.smile), 0.004)


def _draw_age_lines(c: _Canvas, p: Person, G: _Geom):
    """Wrinkles and sagging; each line fades in from its own onset so every cue grows steadily with age."""
    wr = G.wr
    if wr <= 0.0 and G.sag <= 0.0:
        return
    skin = p.skin
    colour = _scale(skin, 0.58)

    def strength(onset):
        return _clip01((wr - onset) / (1.0 - onset)) if wr > onset else 0.0

    def stroke(pts, onset, width, alpha=200):
        s = strength(onset)
        if s > 0.0:
            c.line(pts, _rgba(colour, alpha * min(1.0, 1.6 * s)), width * (0.5 + 0.5 * s))

    mx, my, mw = G.cx, G.mouth_y, G.mouth_w
    for side in (-1, 1):
        # Nasolabial folds: a line and a soft shadow from the nose wing past the mouth corner.
        s = strength(0.0)
        fold = _curve((mx + side * (G.nose_w + 0.012), G.nose_y - 0.012),
                      (mx + side * (mw + 0.03), G.mouth_y - 0.02),
                      (mx + side * (mw + 0.012), my + 0.03 + 0.02 * G.sag), 8)
        if s > 0.0:
            c.lit_line(fold, 0.03, 255 - int(90 * s))
        stroke(fold, 0.0, 0.006)
        ex, ey = mx + side * G.eye_dx, G.eye_y
        # Crow's feet fan out from the outer eye corner.
        ox = ex + side * (G.eye_w + 0.012)
        for k, (dy, onset) in enumerate(((-0.014, 0.25), (0.0, 0.1), (0.016, 0.35))):
            stroke([(ox, ey + dy * 0.4), (ox + side * 0.03, ey + dy * 1.5)], onset, 0.0045, 170)
        # Under-eye line and bag.
        bag = _curve((ex - side * G.eye_w * 0.8, ey + G.eye_h * 1.4), (ex, ey + G.eye_h * 2.6 + 0.01 * G.sag),
                     (ex + side * G.eye_w * 1.1, ey + G.eye_h * 1.1), 6)
        stroke(bag, 0.15, 0.0045, 170)
        if G.sag > 0.0:
            c.lit_line(bag, 0.012, 255 - int(80 * _clip01(G.sag)))
        # Marionette lines from the mouth corners towards the jaw.
        stroke([(mx + side * (mw + 0.004), my + 0.008), (mx + side * (mw + 0.014), my + 0.05 + 0.02 * G.sag)],
               0.45, 0.005, 170)
        # Cheek creases of the very old.
        stroke(_curve((mx + side * G.a * 0.62, G.nose_y - 0.02), (mx + side * G.a * 0.7, my),
                      (mx + side * G.a * 0.62, my + 0.06), 5), 0.7, 0.004, 140)
        if G.sag > 0.0:  # jowls cast a shadow along the jaw
            t0 = 0.8
            jy = G.y_mid + (G.y_chin - G.y_mid) * t0
            c.lit_ellipse(mx + side * (G._lower_w(t0) - 0.03), jy, 0.05, 0.04, 255 - int(70 * _clip01(G.sag)))
    # Forehead lines, more of them as time goes on.
    fw = G.half_width(G.brow_y - 0.05) * 0.6
    for k, onset in enumerate((0.12, 0.2, 0.35, 0.55)):
        y = G.brow_y - 0.035 - 0.019 * k
        stroke(_curve((mx - fw * (1 - 0.1 * k), y + 0.006), (mx, y - 0.008), (mx + fw * (1 - 0.1 * k), y + 0.006),
                      8), onset, 0.005, 185)
    # Frown lines between the brows.
    for side in (-1, 1):
        stroke([(mx + side * 0.012, G.brow_y + 0.006), (mx + side * 0.016, G.brow_y - 0.03)], 0.3, 0.0045, 170)
    # Lip lines above the upper lip.
    for k in (-2, -1, 1, 2):
        stroke([(mx + k * mw * 0.22, my - G.lip_up * 1.3), (mx + k * mw * 0.25, my - G.lip_up * 1.3 - 0.016)],
               0.6, 0.003, 130)
    # Neck lines.
    for k, onset in enumerate((0.4, 0.55)):
        y = G.y_chin + 0.035 + 0.03 * k
        nw = G.neck_w * 0.8
        stroke(_curve((mx - nw, y), (mx, y + 0.012), (mx + nw, y), 6), onset, 0.005, 150)


def _draw_spots(c: _Canvas, p: Person, G: _Geom):
    amount = _clip01((G.age - 60.0) / 25.0) * p.spot_rate
    if amount <= 0.0:
        return
    rng = np.random.default_rng(p.detail_seed + 11)
    spot = _mix(p.skin, (120, 80, 50), 0.5)
    for _ in range(6):
        x = G.cx + rng.uniform(-0.7, 0.7) * G.a
        y = rng.choice((rng.uniform(G.brow_y - 0.1, G.brow_y - 0.03), rng.uniform(G.eye_y + 0.04, G.mouth_y)))
        if abs(x - G.cx) < G.nose_w * 1.5 + 0.02 and y > G.eye_y:
            continue  # not on the nose
        r = rng.uniform(0.006, 0.012)
        c.ellipse(x, y, r, r * 0.85, _rgba(spot, 150 * amount))


def face_landmarks(person: Person, age: float) -> dict:
    """Where the renderer puts the face's parts, in units of the image side (x right, y down, 0..1).

    For benchmarks and tests that look at one region of a rendering (eyes, forehead, cheeks, mouth, hair).
    """
    G = _Geom(person, age)
    recede = _hair_params(person, G)[2]
    return {
        "eye_left": (G.cx - G.eye_dx, G.eye_y), "eye_right": (G.cx + G.eye_dx, G.eye_y), "eye_half_width": G.eye_w,
        "brow_y": G.brow_y, "nose_y": G.nose_y, "mouth_y": G.mouth_y, "mouth_half_width": G.mouth_w,
        "chin_y": G.y_chin, "skull_top_y": G.y_top, "face_half_width": G.a, "centre_x": G.cx,
        "hairline_y": min(y for _, y in _hairline(G, recede)),
    }


def render_face(person: Person, age: float, size: int) -> np.ndarray:
    """`person` at `age` years (float, clipped to 0..AGE_MAX) as a uint8 [size, size, 3] RGB image.

    Deterministic in (person, age, size): the same person always gets the same background and clothes, so a
    rendering at another age is the ground truth for aging that person.
    """
    size = int(size)
    if size < 16:
        raise ValueError(f"size must be >= 16, got {size}")
    p = person
    G = _Geom(p, age)
    c = _Canvas(size, p.background, p.background_kind)
    hp = _hair_params(p, G)
    brow_grey = _clip01((G.age - p.grey_onset - 8.0) / (85.0 - p.grey_onset)) ** 0.9
    brow_colour = _mix(_scale(_grey(p.hair_colour, brow_grey), 0.85), p.skin, 0.55 - 0.3 * G.g - (
        0.1 if G.male else -0.05))

    _draw_hair_back(c, p, G, hp)
    _draw_body(c, p, G)
    _draw_face(c, p, G)
    beard_colour = _draw_beard(c, p, G)
    _draw_age_lines(c, p, G)
    _draw_spots(c, p, G)
    _draw_nose(c, p, G)
    _draw_mouth(c, p, G)
    _draw_eyes(c, p, G, brow_colour)
    _draw_hair_front(c, p, G, hp)
    return c.result(beard_colour)


# ----------------------------------------------------------------------------------------------------------------------
# Data sets.


def _person_ages(person_id: int, seed: int, count: int) -> list:
    """`count` integer ages for one person, from distinct age groups while possible."""
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, int(person_id) & 0xFFFFFFFF, 0xA6E])
    groups = []
    while len(groups) < count:
        groups.extend(rng.permutation(len(AGE_GROUPS)).tolist())
    return [int(rng.integers(AGE_GROUPS[g][0], AGE_GROUPS[g][1] + 1)) for g in groups[:count]]


def make_dataset(num_images: int, size: int, seed: int = 2017, images_per_person: int = 6) -> dict:
    """`num_images` synthetic chips, `images_per_person` ages per person, ages balanced over CAAE's ten groups.

    Returns 'images' uint8 [N, size, size, 3], 'ages' int32 [N] (0..90), 'genders', 'races', 'person_ids' int32 [N].
    Persons are 0..ceil(N / images_per_person) - 1 in order; each person's ages come from distinct age groups.
    Deterministic in (num_images, size, seed), and a smaller N gives a prefix of a larger one.
    """
    num_images, size, per = int(num_images), int(size), int(images_per_person)
    if num_images < 0 or per < 1:
        raise ValueError("num_images must be >= 0 and images_per_person >= 1")
    images = np.empty((num_images, size, size, 3), dtype=np.uint8)
    ages = np.empty(num_images, dtype=np.int32)
    genders = np.empty(num_images, dtype=np.int32)
    races = np.empty(num_images, dtype=np.int32)
    person_ids = np.empty(num_images, dtype=np.int32)
    i = 0
    pid = 0
    while i < num_images:
        person = make_person(pid, seed)
        for age in _person_ages(pid, seed, min(per, num_images - i)):
            images[i] = render_face(person, age, size)
            ages[i], genders[i], races[i], person_ids[i] = age, person.gender, person.race, pid
            i += 1
        pid += 1
    return {"images": images, "ages": ages, "genders": genders, "races": races, "person_ids": person_ids}


def write_utkface_folder(directory: str, num_images: int, size: int, seed: int = 2017, ext: str = "jpg") -> list:
    """Write make_dataset's images as files named like UTKFace chips; returns the sorted paths.

    Names are AGE_GENDER_RACE_STAMP.jpg.chip.jpg (JPEG quality 95) or AGE_GENDER_RACE_STAMP.png, where the 17-digit
    STAMP is f'{seed % 10000:04d}{person_id:06d}{index:07d}', so names are unique and carry the person id.
    """
    if ext not in ("jpg", "png"):
        raise ValueError(f"ext must be 'jpg' or 'png', got {ext!r}")
    data = make_dataset(num_images, size, seed)
    os.makedirs(directory, exist_ok=True)
    paths = []
    for index in range(len(data["ages"])):
        stamp = f"{int(seed) % 10000:04d}{int(data['person_ids'][index]):06d}{index:07d}"
        stem = f"{data['ages'][index]}_{data['genders'][index]}_{data['races'][index]}_{stamp}"
        image = Image.fromarray(data["images"][index])
        if ext == "jpg":
            path = os.path.join(directory, stem + ".jpg.chip.jpg")
            image.save(path, format="JPEG", quality=95)
        else:
            path = os.path.join(directory, stem + ".png")
            image.save(path, format="PNG")
        paths.append(path)
    return sorted(paths)


def contact_sheet(persons, ages, size=128) -> np.ndarray:
    """Rows of persons x columns of ages, one uint8 image; for looking at what the renderer does."""
    rows = [np.concatenate([render_face(p, a, size) for a in ages], axis=1) for p in persons]
    return np.concatenate(rows, axis=0)


if __name__ == "__main__":
    # python -m face_aging.data.synthetic [SHEET.png]: time the 5,000-image target and optionally save a contact sheet.
    import sys
    import time

    for n, side in ((5000, 128), (5000, 64), (5000, 32)):
        start, cpu = time.perf_counter(), time.process_time()
        make_dataset(n, side)
        print(f"make_dataset({n}, {side}): {time.perf_counter() - start:.1f} s wall, "
              f"{time.process_time() - cpu:.1f} s CPU")
    if len(sys.argv) > 1:
        sheet = contact_sheet([make_person(i) for i in range(6)], (2, 8, 14, 19, 26, 35, 45, 55, 65, 80))
        Image.fromarray(sheet).save(sys.argv[1])
        print(f"contact sheet: {sys.argv[1]}")

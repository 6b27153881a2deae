"""The words of the synthetic Med-GRIT data: object catalogue, question and answer templates.

Everything the generator can write comes from the tables of this module (plus numbers and box
markup), which is what lets :func:`clinkd.data.synth.text.vocabulary` list the generator's whole
vocabulary for tokenizer training.

Placeholders: ``{ref}`` a ``<ref>name</ref>`` tag, ``{box}`` a ``<box>…</box>`` tag; caption
placeholders are filled by :mod:`clinkd.data.synth.text`.
"""

from __future__ import annotations

# name -> (kind, synonyms). Kind "organ" is a normal structure, "lesion" a finding.
CATALOGUE: dict[str, tuple[str, tuple[str, ...]]] = {
    "liver": ("organ", ("hepatic parenchyma",)),
    "spleen": ("organ", ("splenic parenchyma",)),
    "stomach": ("organ", ("gastric chamber",)),
    "right kidney": ("organ", ("right renal parenchyma",)),
    "left kidney": ("organ", ("left renal parenchyma",)),
    "aorta": ("organ", ("abdominal aorta",)),
    "vertebra": ("organ", ("vertebral body", "spine")),
    "brain": ("organ", ("brain parenchyma", "cerebrum")),
    "right lateral ventricle": ("organ", ("right lateral cerebral ventricle",)),
    "left lateral ventricle": ("organ", ("left lateral cerebral ventricle",)),
    "right lung": ("organ", ("right lung field",)),
    "left lung": ("organ", ("left lung field",)),
    "heart": ("organ", ("cardiac silhouette",)),
    "right clavicle": ("organ", ("right collarbone",)),
    "left clavicle": ("organ", ("left collarbone",)),
    "bladder": ("organ", ("urinary bladder",)),
    "lumen": ("organ", ("colonic lumen", "bowel lumen")),
    "macula": ("organ", ("macular region", "fovea")),
    "optic disc": ("organ", ("optic nerve head",)),
    "thyroid gland": ("organ", ("thyroid lobe", "thyroid")),
    "carotid artery": ("organ", ("common carotid artery",)),
    "liver tumor": ("lesion", ("hepatic mass", "liver lesion")),
    "kidney cyst": ("lesion", ("renal cyst",)),
    "tumor": ("lesion", ("brain tumor", "intracranial mass", "neoplasm")),
    "nodule": ("lesion", ("pulmonary nodule", "lung nodule")),
    "pleural effusion": ("lesion", ("effusion", "pleural collection")),
    "lesion": ("lesion", ("hypermetabolic lesion", "hot spot", "focus of increased uptake")),
    "polyp": ("lesion", ("colonic polyp", "polypoid lesion")),
    "melanoma": ("lesion", ("malignant melanoma", "atypical pigmented lesion")),
    "nevus": ("lesion", ("melanocytic nevus", "benign mole")),
    "hemorrhage": ("lesion", ("retinal hemorrhage", "blot hemorrhage")),
    "hard exudate": ("lesion", ("exudate", "lipid exudate")),
    "cyst": ("lesion", ("simple cyst", "cystic lesion")),
    "mass": ("lesion", ("solid mass", "breast mass")),
}
# Synonyms that depend on the modality (replace the catalogue's).
SYNONYMS_BY_MODALITY: dict[tuple[str, str], tuple[str, ...]] = {
    ("pet", "heart"): ("myocardium",),
    ("ultrasound", "nodule"): ("thyroid nodule", "solid nodule"),
}

VG_QUESTIONS = (
    "Please locate the {ref} in this image.",
    "Where is the {ref}?",
    "Find the {ref} and give its bounding box.",
    "Detect the {ref} in the image.",
    "Can you point out the {ref} in this picture?",
    "Output the bounding box of the {ref}.",
    "Show me where the {ref} is.",
    "Give the coordinates of the {ref}.",
)
# RO and GC questions name no object: the box is the only pointer to it.
RO_QUESTIONS = (
    "What is the object in {box}?",
    "What is shown in the region {box}?",
    "Identify the structure in {box}.",
    "What can be seen in the area {box}?",
    "Name what is inside {box}.",
    "Which structure or finding lies in {box}?",
    "Classify the object within {box}.",
)
GC_QUESTIONS = (
    "Describe the region {box}.",
    "Please describe what is in {box} in detail.",
    "Give a description of the area {box}.",
    "What does the region {box} look like?",
    "Provide a short caption for {box}.",
    "Characterize the content of {box}.",
)
MII_QUESTIONS = (
    "Analyse this image.",
    "Please describe this medical image in detail.",
    "What does this image show?",
    "Provide a detailed interpretation of this image.",
    "Write a short report for this image.",
    "Describe the findings in this image.",
    "Can you analyze this image and describe what you see?",
)

# Region captions. {the}: "the liver" / "a nodule"; {The}: capitalised; {syn}: a synonym with article.
GC_ANSWERS = (
    "{The} is seen in the {loc} of the image. It is {size}, {shape} and {look}{note}.",
    "This region shows {the}: a {size}, {shape}, {look} {noun} in the {loc} part of the image{note}.",
    "A {size} {shape} {noun} in the {loc} of the image, {look}, consistent with {syn}{note}.",
    "{The}, located in the {loc} region, appears {look} and {shape}{note}; it occupies {pct} of the image.",
    "The boxed area contains {the}. The {noun} is {shape}, {size} and {look}{note}.",
    "{The}: {size}, {shape}, {look}, in the {loc} of the image{note}.",
)
NOUNS = {"organ": ("structure", "anatomical structure"), "lesion": ("lesion", "finding", "abnormality")}
LOCATIONS = (
    "upper left",
    "upper central",
    "upper right",
    "middle left",
    "centre",
    "middle right",
    "lower left",
    "lower central",
    "lower right",
)
SIZES = ("tiny", "small", "medium-sized", "large")
SHAPES = ("round", "oval", "irregular", "lobulated", "elongated", "crescent-shaped", "clustered")
COLOURS = ("dark red", "reddish", "pale pink", "yellowish", "yellow", "brown", "light brown", "variegated")
PERCENT = ("about {n} percent", "less than 1 percent")
INTENSITY: dict[str, dict[str, str]] = {  # modality -> computed level -> word
    "ct": {
        "bright": "hyperdense",
        "dark": "hypodense",
        "similar": "isodense",
        "very dark": "markedly hypodense",
    },
    "mr": {
        "bright": "hyperintense",
        "dark": "hypointense",
        "similar": "isointense",
        "very dark": "markedly hypointense",
    },
    "x": {"bright": "radiopaque", "dark": "radiolucent", "similar": "faint", "very dark": "radiolucent"},
    "pet": {
        "bright": "hypermetabolic",
        "dark": "hypometabolic",
        "similar": "mildly avid",
        "very dark": "photopenic",
    },
    "ultrasound": {
        "bright": "hyperechoic",
        "dark": "hypoechoic",
        "similar": "isoechoic",
        "very dark": "anechoic",
    },
    # Photographic modalities describe colour (the object's colour word) rather than these levels.
    "photo": {"bright": "bright", "dark": "dark", "similar": "subtle", "very dark": "very dark"},
}
NOTES: dict[str, tuple[str, ...]] = {
    "edema": (", with surrounding edema", ", surrounded by edema"),
    "ring_enhancement": (", with a ring of enhancement", ", showing rim enhancement"),
    "irregular_border": (
        ", with an irregular border and several colours",
        ", with asymmetric pigmentation and irregular borders",
    ),
    "regular_network": (", with a regular pigment network", ", with symmetric pigmentation"),
    "posterior_shadowing": (", with posterior acoustic shadowing", ", casting an acoustic shadow"),
    "posterior_enhancement": (
        ", with posterior acoustic enhancement",
        ", showing enhanced through-transmission",
    ),
}

# Whole-image analyses.
OPENINGS: dict[str, tuple[str, ...]] = {
    "ct": (
        "This is an axial CT image of the abdomen.",
        "The image is an axial computed tomography slice through the upper abdomen.",
        "Axial abdominal CT scan.",
    ),
    "mr": (
        "This is an axial MRI of the brain.",
        "The image is an axial magnetic resonance slice of the head.",
        "Axial brain MR image.",
    ),
    "x": (
        "This is a frontal chest X-ray.",
        "Posteroanterior chest radiograph.",
        "The image is a frontal radiograph of the chest.",
    ),
    "pet": (
        "This is a coronal whole-body PET image.",
        "Whole-body FDG PET, coronal maximum intensity projection.",
        "The image shows a whole-body positron emission tomography scan.",
    ),
    "endoscopy": (
        "This is an endoscopic image of the colon.",
        "Colonoscopy frame showing the colonic mucosa.",
        "The image was taken during a colonoscopy.",
    ),
    "dermoscopy": (
        "This is a dermoscopic image of a pigmented skin lesion.",
        "Dermoscopy of the skin.",
        "The image is a dermatoscopic view of the skin surface.",
    ),
    "fundus": (
        "This is a colour fundus photograph.",
        "Fundus photograph of the retina.",
        "The image shows the retina on fundus photography.",
    ),
    "ultrasound": (
        "This is an ultrasound image of the {region}.",
        "B-mode ultrasound of the {region}.",
        "The image is a sonogram of the {region}.",
    ),
}
STRUCTURES = (
    "Visible structures include {list}.",
    "The image shows {list}.",
    "{List} are visible.",
    "Anatomy seen: {list}.",
)
STRUCTURE_ONE = ("{The} is visible.", "The image shows {the}.")
FINDING_ONE = (
    "{The} is seen in the {loc} of the image {grounding}; it is {size}, {shape} and {look}{note}.",
    "There is a {size} {look} {noun} in the {loc} of the image: {grounding}{note}.",
    "Finding: {grounding}, a {size} {shape} {noun} in the {loc} region{note}.",
)
FINDING_MANY = (
    "{Count} {plural} are seen: {grounding}.",
    "There are {count} {plural} {grounding}.",
    "Findings: {count} {plural}, {grounding}.",
)
COUNTS = ("two", "three", "four", "five", "six")
NO_FINDING = (
    "No focal lesion is seen.",
    "No abnormality is detected.",
    "There is no evidence of a focal finding.",
)
FACTS: dict[str, tuple[str, ...]] = {
    "ct_contrast": (
        "The study is contrast-enhanced, with a bright aorta.",
        "Intravenous contrast opacifies the aorta and kidneys.",
    ),
    "ct_plain": ("The study is unenhanced.", "No intravenous contrast is seen."),
    "mr_t1": (
        "The sequence is T1-weighted, with dark cerebrospinal fluid.",
        "On this T1-weighted image the cerebrospinal fluid is dark.",
    ),
    "mr_t2": (
        "The sequence is T2-weighted, with bright cerebrospinal fluid.",
        "On this T2-weighted image the cerebrospinal fluid is bright.",
    ),
    "ventriculomegaly": ("The lateral ventricles are enlarged.", "The ventricles appear dilated."),
    "ventricles_normal": ("The lateral ventricles are of normal size.", "Ventricular size is normal."),
    "cardiomegaly": ("The cardiac silhouette is enlarged.", "The heart appears enlarged."),
    "heart_normal": ("The heart size is within normal limits.", "The cardiac silhouette is normal in size."),
    "pet_physiologic": (
        "Physiological uptake is seen in the brain and the bladder.",
        "The brain and the urinary bladder show normal physiological uptake.",
    ),
    "derm_asymmetric": (
        "The lesion is asymmetric with an irregular border and variegated colour.",
        "Pigmentation is asymmetric and irregular.",
    ),
    "derm_symmetric": (
        "The lesion is symmetric with a regular border and uniform colour.",
        "Pigmentation is uniform and symmetric.",
    ),
    "right_eye": (
        "This is the right eye, with the optic disc on the right of the image.",
        "Right eye: the optic disc lies to the right of the macula.",
    ),
    "left_eye": (
        "This is the left eye, with the optic disc on the left of the image.",
        "Left eye: the optic disc lies to the left of the macula.",
    ),
}
IMPRESSION_LESION = ("Overall, the findings are suggestive of {list}.", "Impression: {list}.")
IMPRESSION_NORMAL = ("Overall, the study appears normal.", "Impression: normal study.")

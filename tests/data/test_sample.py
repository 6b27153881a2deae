from clinkd.data.sample import Sample, Turn, guess_task, modality_of, strip_image_tag, task_from_name


def test_modality_from_name():
    assert modality_of("ct_00012.png") == "ct"
    assert modality_of("images/endoscopy_a_b.png") == "endoscopy"
    assert Sample(id="x_1", image="x_1.png", turns=[]).modality == "x"


def test_strip_image_tag():
    assert strip_image_tag("<img>ct_1.png</img>\nWhere is the liver?") == ("Where is the liver?", "ct_1.png")
    assert strip_image_tag("Where?") == ("Where?", None)


def test_task_from_name():
    assert task_from_name("test_VG.json") == "VG"
    assert task_from_name("/a/b/MedGRIT_MII_test.json") == "MII"
    assert task_from_name("train.json") is None
    assert task_from_name("VG_and_RO.json") is None  # ambiguous


def test_guess_task():
    box = "<box>(1,2),(30,40)</box>"
    assert guess_task(Turn("Where is the <ref>liver</ref>?", f"<ref>liver</ref>{box}")) == "VG"
    assert guess_task(Turn(f"What is in {box}?", "<ref>liver</ref>")) == "RO"
    assert (
        guess_task(Turn(f"Describe {box}.", "A large oval bright organ in the upper left of the image."))
        == "GC"
    )
    assert (
        guess_task(
            Turn(
                "Analyse the image.", "This is a CT image of the abdomen showing the liver and both kidneys."
            )
        )
        == "MII"
    )


def test_one_task_and_modality_rule_for_data_and_eval():
    """test_mii.json is MII everywhere: clinkd.data and clinkd.eval share one definition (issue 11)."""
    import pytest

    from clinkd.errors import DataError
    from clinkd.eval import predictions

    assert predictions.task_from_filename is not None and predictions.modality_of is modality_of
    assert predictions.TASKS is __import__("clinkd.data.sample", fromlist=["TASKS"]).TASKS
    for name, task in [
        ("test_mii.json", "MII"),
        ("Test_MII.json", "MII"),
        ("dir/test_VG.json", "VG"),
        ("/a/b/test_gc.jsonl", "GC"),
        ("run-3.RO.predictions.jsonl", "RO"),
    ]:
        assert task_from_name(name) == task, name
        assert predictions.task_from_filename(name) == task, name
    for name in ["train.json", "VGx.json", "dir/VG_vs_GC.json"]:  # none, not a token, ambiguous
        assert task_from_name(name) is None, name
        with pytest.raises(DataError, match="--task"):
            predictions.task_from_filename(name)
    for image in ["ct_00012.png", "images/ct_00012.png"]:
        assert modality_of(image) == predictions.modality_of(image) == "ct"
    assert modality_of("CT_1.png") == "CT" and modality_of("noprefix.png") == "noprefix.png"

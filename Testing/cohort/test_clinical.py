"""orbitai.cohort.clinical: typed clinical schemas, validation errors naming case and column,
missing values filled from training rows only."""
from __future__ import annotations

import numpy as np
import pytest

from orbitai.cohort.clinical import IVGC_CLINICAL, ClinicalFeature, ClinicalSchema
from orbitai.cohort.manifest import ManifestError
from orbitai.phantoms.cohort import clinical_features


def test_ivgc_schema_accepts_what_the_phantom_generator_writes():
    rng = np.random.default_rng(0)
    rows = [{"case_id": f"c{i}", **{k: str(v) for k, v in clinical_features(rng, i % 2, rng.random()).items()}}
            for i in range(300)]
    m = IVGC_CLINICAL.parse_rows(rows)
    assert m.shape == (300, 16) and np.isfinite(m).all()
    assert IVGC_CLINICAL["cas_score"].unit == "0-7" and IVGC_CLINICAL["sex_male"].kind == "binary"
    assert len(set(IVGC_CLINICAL.names)) == 16


@pytest.mark.parametrize("column, value, message", [
    ("age_years", "150", "Case c7, column 'age_years': 150 is outside the valid range 0 to 120 years"),
    ("cas_score", "3.5", "Case c7, column 'cas_score': '3.5' must be a whole number"),
    ("sex_male", "2", "Case c7, column 'sex_male': '2' must be 0 or 1"),
    ("trab_iu_per_l", "high", "Case c7, column 'trab_iu_per_l': 'high' is not a number"),
    ("age_years", "", "Case c7, column 'age_years': the value is missing; this feature is required"),
    ("iop_mmhg", "inf", "Case c7, column 'iop_mmhg': 'inf' is not a finite number"),
])
def test_bad_values_name_the_case_and_column_in_one_line(column, value, message):
    row = {"case_id": "c7", **clinical_features(np.random.default_rng(1), 1, 0.5)}
    row[column] = value
    with pytest.raises(ManifestError) as err:
        IVGC_CLINICAL.parse_rows([row])
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_missing_columns_are_listed():
    with pytest.raises(ManifestError, match=r"lacks clinical column\(s\) \['sex_male', "):
        IVGC_CLINICAL.parse_rows([{"case_id": "a", "age_years": "40"}])


def test_missing_values_are_filled_from_training_rows_only():
    schema = ClinicalSchema((
        ClinicalFeature("tsh", "mIU/L", "TSH", low=0, high=500, missing="median"),
        ClinicalFeature("smoking", "0/1", "smoker", "binary", missing="mode"),
        ClinicalFeature("eye", "", "which eye", "categorical", levels=("right", "left"), missing="error"),
    ))
    train = schema.parse_rows([{"case_id": "a", "tsh": "1", "smoking": "1", "eye": "left"},
                               {"case_id": "b", "tsh": "3", "smoking": "1", "eye": "right"},
                               {"case_id": "c", "tsh": "NA", "smoking": "0", "eye": "right"}])
    assert np.isnan(train[2, 0]) and train[0, 2] == 1.0          # categorical: the level's index
    fill = schema.fill_values(train)
    assert fill == {"tsh": 2.0, "smoking": 1.0}
    test = schema.parse_rows([{"case_id": "d", "tsh": "", "smoking": "", "eye": "left"}])
    np.testing.assert_array_equal(schema.impute(test, fill), [[2.0, 1.0, 1.0]])
    with pytest.raises(ManifestError, match="Case e, column 'eye': 'both' is not one of the levels"):
        schema.parse_rows([{"case_id": "e", "tsh": "1", "smoking": "0", "eye": "both"}])
    with pytest.raises(ManifestError, match="no fill value"):
        schema.impute(test, {})


def test_schema_definitions_are_checked():
    with pytest.raises(ValueError, match="needs its levels"):
        ClinicalFeature("x", "", "x", "categorical")

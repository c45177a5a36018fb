"""Every environment variable: documented in the README, and named when its value is wrong."""

import pytest

from em_assets.settings import ALL_SETTINGS, ConfigurationError
from em_assets.sources import (
    EbiFiles,
    EmpiarApi,
    EpflServer,
    HemibrainVolume,
    IdrApi,
    OpenOrganelleStore,
)
from em_assets.storage.root import StorageRoot


def test_readme_documents_every_variable_with_its_default(pytestconfig):
    readme = (pytestconfig.rootpath / "README.md").read_text()
    for setting in ALL_SETTINGS:
        assert f"`{setting.name}`" in readme, setting.name
        assert setting.default in readme, setting.name


@pytest.mark.parametrize(
    ("check", "variable"),
    [
        (lambda: StorageRoot(root="nosuch://x").base(), "EM_ASSETS_ROOT"),
        (lambda: EpflServer(base_url="ftp://documents.epfl.ch/x").file_url("a.tif"), "EM_EPFL_URL"),
        (lambda: HemibrainVolume(cloudpath="file-like").validated_cloudpath(), "EM_HEMIBRAIN_URL"),
        (lambda: HemibrainVolume(cloudpath="gs://").validated_cloudpath(), "EM_HEMIBRAIN_URL"),
        (lambda: HemibrainVolume(segmentation_cloudpath="s").label_cloudpath("segmentation"),
         "EM_HEMIBRAIN_SEGMENTATION_URL"),
        (lambda: HemibrainVolume(mito_cloudpath="ftp://x/m").label_cloudpath("mito"),
         "EM_HEMIBRAIN_MITO_URL"),
        (lambda: EmpiarApi(base_url="www.ebi.ac.uk/api").entry_url("E-1"), "EM_EMPIAR_API_URL"),
        (lambda: EbiFiles(base_url="https://ftp.ebi.ac.uk?x=1").url("a"), "EM_EBI_FILES_URL"),
        (lambda: IdrApi(base_url="").image_data_url(1), "EM_IDR_URL"),
        (lambda: OpenOrganelleStore(url="bucket/x.zarr").validated_url(), "EM_OPENORGANELLE_URL"),
    ],
)  # fmt: skip
def test_malformed_values_name_their_variable(check, variable):
    with pytest.raises(ConfigurationError, match=variable):
        check()


@pytest.mark.parametrize(
    ("cloudpath", "expected"),
    [
        ("precomputed://https://storage.googleapis.com/b/p/", "precomputed://https://storage.googleapis.com/b/p"),
        ("gs://bucket/layer", "precomputed://gs://bucket/layer"),
        ("precomputed://http://127.0.0.1:9000/x", "precomputed://http://127.0.0.1:9000/x"),
    ],
)  # fmt: skip
def test_well_formed_cloudpaths_are_normalised(cloudpath, expected):
    assert HemibrainVolume(cloudpath=cloudpath).validated_cloudpath() == expected

def pytest_configure(config):
    config.addinivalue_line("markers", "torch: needs libfxcam built with libtorch (deselected otherwise)")

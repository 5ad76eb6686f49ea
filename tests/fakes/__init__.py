"""Test doubles for vendor libraries (``fakes.fake_nvml``: NVML as ``pynvml`` sees it).

A package, so that ``tests/fakes`` itself is never put on ``sys.path`` by pytest: the ``pynvml``
shim here must be importable only where a test asks for it (``PYTHONPATH=tests/fakes`` for a
subprocess), never by accident in the test process.
"""

"""Support shared by the test suite (`tests/`) and the benchmark scripts (`bench/`).

Dependencies run one way: `tests/` and `bench/` import this package, and this package imports only
the project's own packages (`app`, `digits`, `training`) and libraries, never `tests` or `bench`.

Modules:
    shared_data     where the checkout and `../shared/data` are; the MNIST test digits as arrays
    images          image arrays -> upload bytes (PNG, JPEG, any Pillow format)
    photo_like      an MNIST digit -> a "phone photo" of it on paper
    byte_mutations  a Hypothesis strategy damaging real image files
    model_fixture   a real, small SavedModel trained in seconds
    server          the real service as a uvicorn subprocess on a free loopback port
    http_load       raw HTTP/1.1 requests and a closed-loop load generator
    payloads        the benchmark's pools of upload requests
    overload        the overload scenario: shed with 503 + Retry-After, then recover
    shutdown        the SIGTERM-under-load scenario
    model_timing    the model alone timed per batch size, and the batching ceiling it sets
    labelled_sets   the labelled test sets (MNIST, USPS, CVL, a folder) as uploads for the HTTP benchmarks
    unsure_sets     held-out non-digits and two-digit numbers, from sources training never uses
    held_out_glyphs, held_out_drawings, two_digit_numbers   their fonts, drawings and layouts
    unsure_tally    how answers to those images count against the unsure targets
"""

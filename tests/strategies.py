"""Hypothesis strategies shared by the tests that compare the Rust core with the reference."""

import unicodedata

from hypothesis import strategies as st

#: Characters assigned in this Python's Unicode tables, no surrogates or private use. The core's
#: tables may be newer (``ts.UNICODE_VERSIONS``): on code points Python does not know, the two
#: may case-map or normalize differently, which ``test_tokenize`` checks over every code point.
ASSIGNED = st.characters(blacklist_categories=("Cs", "Cn", "Co")).filter(
    lambda c: unicodedata.category(c) != "Cn"
)

# Cython's types for keywords.py's compiled build (musicnft/compiled.py): only the keyword scan's
# (`_found_in_text`'s locals, and `_is_word_at` as a C function), so its pass over a text is a C loop. The .py stays plain Python; interpreted, these
# declarations do not exist.
import cython

@cython.locals(
    n=cython.Py_ssize_t,
    i=cython.Py_ssize_t,
    j=cython.Py_ssize_t,
    size=cython.Py_ssize_t,
    c=cython.long,
    d=cython.long,
    matched=cython.bint,
    candidates=tuple,
    keyword=str,
)
cpdef object _found_in_text(str text, tuple firsts)

@cython.locals(b=cython.long)
cdef bint _is_word_at(str text, Py_ssize_t i) except -1

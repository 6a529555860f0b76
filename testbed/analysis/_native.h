/* The functions of the _native module defined outside _native.c (see native.py). */
#ifndef TESTBED_NATIVE_H
#define TESTBED_NATIVE_H

#include <Python.h>

PyObject *frame_columns(PyObject *self, PyObject *args);   /* _native_frames.c */
PyObject *group_ids(PyObject *self, PyObject *args);       /* _native_groups.c */
PyObject *group_reduce(PyObject *self, PyObject *args);
PyObject *burst_starts(PyObject *self, PyObject *args);
PyObject *canary_scan(PyObject *self, PyObject *args);
PyObject *endpoint_rows(PyObject *self, PyObject *args);
PyObject *addr_find(PyObject *self, PyObject *args);

#endif

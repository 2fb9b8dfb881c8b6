#ifndef QS_CEDITLINE_SHIM_H
#define QS_CEDITLINE_SHIM_H
#include <stdio.h>
#include <histedit.h>
// el_set and history are variadic; Swift calls these fixed-argument wrappers instead.
#endif

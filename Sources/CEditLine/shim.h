#ifndef QS_CEDITLINE_SHIM_H
#define QS_CEDITLINE_SHIM_H
#include <stdio.h>
#include <histedit.h>

// el_set, el_get and history are variadic; Swift calls these fixed-argument wrappers instead.

static inline FILE *qs_stdin(void) { return stdin; }
static inline FILE *qs_stdout(void) { return stdout; }
static inline FILE *qs_stderr(void) { return stderr; }

typedef char *(*qs_prompt_fn)(EditLine *);
typedef unsigned char (*qs_editor_fn)(EditLine *, int);

static inline int qs_el_set_prompt(EditLine *el, qs_prompt_fn prompt) {
    return el_set(el, EL_PROMPT, prompt);
}

/// For the operations that take one string: EL_EDITOR ("emacs", "vi").
static inline int qs_el_set_string(EditLine *el, int op, const char *value) {
    return el_set(el, op, value);
}

/// For the operations that take one int: EL_SIGNAL, EL_EDITMODE.
static inline int qs_el_set_int(EditLine *el, int op, int value) {
    return el_set(el, op, value);
}

typedef int (*qs_getc_fn)(EditLine *, wchar_t *);

/// Replaces libedit's character reader (EL_GETCFN).
static inline int qs_el_set_getc(EditLine *el, qs_getc_fn function) {
    return el_set(el, EL_GETCFN, function);
}

static inline int qs_el_set_history(EditLine *el, History *history_object) {
    return el_set(el, EL_HIST, history, history_object);
}

static inline int qs_el_add_function(EditLine *el, const char *name, const char *help, qs_editor_fn function) {
    return el_set(el, EL_ADDFN, name, help, function);
}

/// Binds a key sequence such as "^I" to an editor command or a function added with EL_ADDFN.
static inline int qs_el_bind(EditLine *el, const char *key, const char *command) {
    return el_set(el, EL_BIND, key, command, (const char *)NULL);
}

static inline int qs_el_set_clientdata(EditLine *el, void *data) {
    return el_set(el, EL_CLIENTDATA, data);
}

static inline void *qs_el_get_clientdata(EditLine *el) {
    void *data = NULL;
    el_get(el, EL_CLIENTDATA, &data);
    return data;
}

static inline int qs_history_setsize(History *h, HistEvent *event, int size) {
    return history(h, event, H_SETSIZE, size);
}

static inline int qs_history_setunique(History *h, HistEvent *event, int unique) {
    return history(h, event, H_SETUNIQUE, unique);
}

/// For the operations that take one string: H_ENTER, H_LOAD, H_SAVE.
static inline int qs_history_string(History *h, HistEvent *event, int op, const char *value) {
    return history(h, event, op, value);
}

/// For the operations that take no argument: H_FIRST, H_LAST, H_NEXT, H_PREV, H_GETSIZE, H_CLEAR.
static inline int qs_history_step(History *h, HistEvent *event, int op) {
    return history(h, event, op);
}

/// The terminal's width in columns as libedit knows it, or `fallback`.
static inline int qs_el_columns(EditLine *el, int fallback) {
    int columns = 0;
    if (el_get(el, EL_GETTC, "co", &columns) != 0 || columns <= 0) return fallback;
    return columns;
}

#endif

/* plan.c - parsing a layer plan and compiling it into a buffer program (plan.h). */
#include "plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------ */
/* syntax tree: a pool of nodes; siblings are linked */

typedef enum { NODE_BLOCK, NODE_SEQ, NODE_PAR, NODE_LOOP } NodeKind;

typedef struct {
    NodeKind kind;
    int block;        /* NODE_BLOCK */
    int count;        /* NODE_LOOP: r */
    int first, next;  /* first child, next sibling (-1: none) */
} Node;

#define MAX_DEPTH 64  /* nested parentheses */

typedef struct {
    const char *text;
    int len, pos, depth, n_layer;
    Node *nodes;
    int num_nodes, cap_nodes;
    BpError *err;
    int failed;
} Parser;

static int fail_at(Parser *p, int pos, const char *what) {
    if (p->failed) return -1;
    p->failed = 1;
    if (pos >= p->len)
        bp_fail(p->err, "'%s': %s at character %d (the end)", p->text, what, pos + 1);
    else
        bp_fail(p->err, "'%s': %s at character %d", p->text, what, pos + 1);
    return -1;
}

static void skip_spaces(Parser *p) {
    while (p->pos < p->len && (p->text[p->pos] == ' ' || p->text[p->pos] == '\t')) p->pos++;
}

static int peek(Parser *p) {
    skip_spaces(p);
    return p->pos < p->len ? (unsigned char)p->text[p->pos] : 0;
}

static int new_node(Parser *p, NodeKind kind) {
    if (p->num_nodes == p->cap_nodes) return fail_at(p, p->pos, "plan too long");
    Node *n = &p->nodes[p->num_nodes];
    memset(n, 0, sizeof *n);
    n->kind = kind;
    n->first = n->next = -1;
    return p->num_nodes++;
}

/* Reads digits at p->pos into *value (capped, so that no number overflows). */
static int read_number(Parser *p, long *value) {
    int start = p->pos;
    long v = 0;
    while (p->pos < p->len && p->text[p->pos] >= '0' && p->text[p->pos] <= '9') {
        if (v < 100000000L) v = v * 10 + (p->text[p->pos] - '0');
        p->pos++;
    }
    *value = v;
    return p->pos > start;
}

static int parse_plan(Parser *p);

static int parse_atom(Parser *p) {
    int c = peek(p), at = p->pos;
    if (c >= '0' && c <= '9') {
        long l;
        read_number(p, &l);
        if (l >= p->n_layer) {
            char what[96];  /* the digits as written: l is capped */
            int digits = p->pos - at < 12 ? p->pos - at : 12;
            snprintf(what, sizeof what, "block %.*s is not below the model's %d blocks",
                     digits, p->text + at, p->n_layer);
            return fail_at(p, at, what);
        }
        int n = new_node(p, NODE_BLOCK);
        if (n >= 0) p->nodes[n].block = (int)l;
        return n;
    }
    if (c == '(') {
        if (++p->depth > MAX_DEPTH) return fail_at(p, at, "parentheses nested too deeply");
        p->pos++;
        int inner = parse_plan(p);
        if (inner < 0) return -1;
        if (peek(p) != ')') return fail_at(p, p->pos, "expected ')'");
        p->pos++;
        p->depth--;
        return inner;
    }
    if (c == 0 || c == ',' || c == ')') return fail_at(p, at, "empty step");
    char what[64];
    snprintf(what, sizeof what, "unexpected '%c'", c);
    return fail_at(p, at, what);
}

/* An atom and its loops: `*` binds tighter than `+` (1+2*3 is 1 + (2,2,2)). */
static int parse_term(Parser *p) {
    int term = parse_atom(p);
    while (term >= 0 && peek(p) == '*') {
        p->pos++;
        skip_spaces(p);
        int at = p->pos;
        long r;
        if (!read_number(p, &r)) return fail_at(p, at, "expected a loop count");
        if (r < 1 || r > LAYER_PLAN_MAX_LOOP) {
            char what[80];
            snprintf(what, sizeof what, "loop count %ld is not from 1 to %d", r,
                     LAYER_PLAN_MAX_LOOP);
            return fail_at(p, at, what);
        }
        if (r == 1) continue;
        int loop = new_node(p, NODE_LOOP);
        if (loop < 0) return -1;
        p->nodes[loop].first = term;
        p->nodes[loop].count = (int)r;
        term = loop;
    }
    return term;
}

/* Terms joined by `+`: one parallel group (a single term is itself). */
static int parse_step(Parser *p) {
    int first = parse_term(p);
    if (first < 0 || peek(p) != '+') return first;
    int group = new_node(p, NODE_PAR);
    if (group < 0) return -1;
    p->nodes[group].first = first;
    for (int last = first; peek(p) == '+';) {
        p->pos++;
        int next = parse_term(p);
        if (next < 0) return -1;
        p->nodes[last].next = next;
        last = next;
    }
    return group;
}

static int parse_plan(Parser *p) {
    int first = parse_step(p);
    if (first < 0 || peek(p) != ',') return first;
    int seq = new_node(p, NODE_SEQ);
    if (seq < 0) return -1;
    p->nodes[seq].first = first;
    for (int last = first; peek(p) == ',';) {
        p->pos++;
        int next = parse_step(p);
        if (next < 0) return -1;
        p->nodes[last].next = next;
        last = next;
    }
    return seq;
}

/* ------------------------------------------------------------------------------------ */
/* compiling: each node reads buf[src] and writes (add: adds) its result to buf[dst] */

typedef struct {
    const Node *nodes;
    LayerPlan *plan;
    int cap_ops, next_buffer;
    BpError *err;
} Compiler;

static int emit(Compiler *c, PlanOp op) {
    LayerPlan *pl = c->plan;
    if (op.kind == PLAN_BLOCK) {
        if (pl->num_runs == LAYER_PLAN_MAX_RUNS)
            return bp_fail(c->err, "'%s': the plan runs more than %d blocks", pl->text,
                           LAYER_PLAN_MAX_RUNS);
        op.slot = pl->num_runs++;
    }
    if (pl->num_ops == c->cap_ops) {
        int cap = c->cap_ops ? 2 * c->cap_ops : 16;
        PlanOp *ops = realloc(pl->ops, (size_t)cap * sizeof *ops);
        if (!ops) return bp_fail(c->err, "out of memory for a layer plan");
        pl->ops = ops;
        c->cap_ops = cap;
    }
    pl->ops[pl->num_ops++] = op;
    return 0;
}

static int fresh_buffer(Compiler *c) {
    int b = c->next_buffer++;
    if (c->next_buffer > c->plan->num_buffers) c->plan->num_buffers = c->next_buffer;
    return b;
}

static int compile(Compiler *c, int node, int src, int dst, int add);

/* A sequence of `count` items: the i-th is item(i). */
static int compile_sequence(Compiler *c, const int *items, int count, int src, int dst,
                            int add) {
    if (count == 1) return compile(c, items[0], src, dst, add);
    int x = add ? fresh_buffer(c) : dst;  /* where the sequence works */
    int rc = compile(c, items[0], src, x, 0);
    for (int i = 1; rc == 0 && i < count - 1; i++) rc = compile(c, items[i], x, x, 0);
    if (rc == 0) rc = compile(c, items[count - 1], x, dst, add);
    if (add) c->next_buffer--;
    return rc;
}

static int compile(Compiler *c, int node, int src, int dst, int add) {
    const Node *n = &c->nodes[node];
    int count = 0, rc = 0;
    for (int k = n->first; k >= 0; k = c->nodes[k].next) count++;
    switch (n->kind) {
    case NODE_BLOCK:
        return emit(c, (PlanOp){PLAN_BLOCK, n->block, 0, src, dst, add, 0});
    case NODE_PAR: {
        int acc = fresh_buffer(c), branch = 0;
        for (int k = n->first; rc == 0 && k >= 0; k = c->nodes[k].next)
            rc = compile(c, k, src, acc, branch++ > 0);
        if (rc == 0) rc = emit(c, (PlanOp){PLAN_COMBINE, 0, 0, acc, dst, add, count});
        c->next_buffer--;
        return rc;
    }
    case NODE_SEQ:
    case NODE_LOOP: {
        if (n->kind == NODE_LOOP) count = n->count;
        int *items = malloc((size_t)count * sizeof *items);
        if (!items) return bp_fail(c->err, "out of memory for a layer plan");
        for (int i = 0, k = n->first; i < count; i++) {
            items[i] = k;
            if (n->kind == NODE_SEQ) k = c->nodes[k].next;
        }
        rc = compile_sequence(c, items, count, src, dst, add);
        free(items);
        return rc;
    }
    }
    return bp_fail(c->err, "layer plan: unknown node");
}

/* ------------------------------------------------------------------------------------ */

int layer_plan_parse(LayerPlan *plan, const char *text, int n_layer, BpError *err) {
    memset(plan, 0, sizeof *plan);
    size_t len = strlen(text);
    if (len >= LAYER_PLAN_TEXT_MAX)
        return bp_fail(err, "the plan is %zu characters long, more than %d", len,
                       LAYER_PLAN_TEXT_MAX - 1);
    memcpy(plan->text, text, len + 1);
    for (size_t i = 0; i < len; i++)  /* quoted in messages: keep them one printable line */
        if ((unsigned char)text[i] < 0x20 || (unsigned char)text[i] == 0x7f)
            return bp_fail(err, "the plan has a control character at character %zu", i + 1);
    plan->n_layer = n_layer;
    Parser p = {.text = plan->text, .len = (int)len, .n_layer = n_layer, .err = err};
    p.cap_nodes = 2 * (int)len + 4;
    p.nodes = malloc((size_t)p.cap_nodes * sizeof *p.nodes);
    if (!p.nodes) return bp_fail(err, "out of memory for a layer plan");
    int root = parse_plan(&p);
    if (root >= 0 && p.pos < p.len) {
        char c = p.text[p.pos];
        if (c == ')') root = fail_at(&p, p.pos, "unmatched ')'");
        else {
            char what[64];
            snprintf(what, sizeof what, "unexpected '%c'", c);
            root = fail_at(&p, p.pos, what);
        }
    }
    int rc = -1;
    if (root >= 0) {
        Compiler c = {.nodes = p.nodes, .plan = plan, .err = err};
        fresh_buffer(&c);  /* buffer 0: h */
        rc = compile(&c, root, 0, 0, 0);
    }
    free(p.nodes);
    if (rc != 0) layer_plan_free(plan);
    return rc;
}

void layer_plan_free(LayerPlan *plan) {
    free(plan->ops);
    plan->ops = NULL;
    plan->num_ops = plan->num_runs = 0;
}

int layer_plan_is_identity(const LayerPlan *plan) {
    if (plan->num_ops != plan->n_layer) return 0;
    for (int i = 0; i < plan->num_ops; i++) {
        const PlanOp *op = &plan->ops[i];
        if (op->kind != PLAN_BLOCK || op->block != i || op->src || op->dst || op->add) return 0;
    }
    return 1;
}

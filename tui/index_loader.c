/* index_loader.c - the nearest-neighbour index, loaded by a background thread. */
#include "index_loader.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct IndexLoader {
    pthread_t thread;
    pthread_mutex_t mutex;
    pthread_cond_t done_cond;
    char path[4096];
    /* under mutex */
    IndexState state;
    double fraction;
    int finished;            /* the thread has returned */
    /* written by the thread before it sets state, read by the UI after */
    SenseStore *store;
    BpError err;
};

static void on_progress(double fraction, void *ctx) {
    IndexLoader *l = ctx;
    pthread_mutex_lock(&l->mutex);
    l->fraction = fraction;
    pthread_mutex_unlock(&l->mutex);
}

static void *load_thread(void *arg) {
    IndexLoader *l = arg;
    SenseStore *store = NULL;
    BpError err = {0};
    IndexState state = INDEX_FAILED;
    if (store_open(&store, l->path, STORE_READ_ONLY, &err) == 0) {
        if (store_load_index(store, on_progress, l, &err) == 0) {
            state = INDEX_READY;
        } else {
            store_close(store);
            store = NULL;
        }
    }
    pthread_mutex_lock(&l->mutex);
    l->store = store;
    l->err = err;
    l->state = state;
    l->fraction = 1.0;
    l->finished = 1;
    pthread_cond_broadcast(&l->done_cond);
    pthread_mutex_unlock(&l->mutex);
    return NULL;
}

IndexLoader *index_loader_start(const char *db_path) {
    IndexLoader *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    snprintf(l->path, sizeof l->path, "%s", db_path);
    pthread_mutex_init(&l->mutex, NULL);
    pthread_cond_init(&l->done_cond, NULL);
    l->state = INDEX_LOADING;
    if (pthread_create(&l->thread, NULL, load_thread, l) != 0) {
        pthread_mutex_destroy(&l->mutex);
        pthread_cond_destroy(&l->done_cond);
        free(l);
        return NULL;
    }
    return l;
}

IndexState index_loader_poll(IndexLoader *l, double *fraction) {
    pthread_mutex_lock(&l->mutex);
    IndexState s = l->state;
    if (fraction) *fraction = l->fraction;
    pthread_mutex_unlock(&l->mutex);
    return s;
}

IndexState index_loader_wait(IndexLoader *l) {
    pthread_mutex_lock(&l->mutex);
    while (!l->finished) pthread_cond_wait(&l->done_cond, &l->mutex);
    IndexState s = l->state;
    pthread_mutex_unlock(&l->mutex);
    return s;
}

SenseStore *index_loader_store(IndexLoader *l) {
    return index_loader_poll(l, NULL) == INDEX_READY ? l->store : NULL;
}

const char *index_loader_error(IndexLoader *l) {
    return index_loader_poll(l, NULL) == INDEX_FAILED ? l->err.msg : "";
}

void index_loader_free(IndexLoader *l, int wait) {
    if (!l) return;
    if (!wait && index_loader_poll(l, NULL) == INDEX_LOADING) {
        pthread_detach(l->thread);  /* the thread still uses l: leave it to the exit */
        return;
    }
    pthread_join(l->thread, NULL);
    if (l->store) store_close(l->store);
    pthread_mutex_destroy(&l->mutex);
    pthread_cond_destroy(&l->done_cond);
    free(l);
}

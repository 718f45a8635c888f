/* The safetensors loader (model/safetensors.h): the input is a whole model.safetensors.
 * An accepted file must hold what its header says: every tensor is read (as float32
 * where the dtype allows) and must come back whole. Then the same file is loaded as the
 * weights of a tiny GPT-2 (checkpoint_load: names, shapes, dtypes, finite values), the
 * model of the seed corpus's transformer.safetensors. */
#include <stdlib.h>
#include <string.h>

#include "../../model/checkpoint.h"
#include "../../model/safetensors.h"
#include "fuzz.h"

static const char tiny_config[] =
    "{\"activation_function\": \"gelu_new\", \"layer_norm_epsilon\": 1e-5, \"model_type\": \"gpt2\",\n"
    " \"n_embd\": 4, \"n_head\": 1, \"n_layer\": 1, \"n_positions\": 4,\n"
    " \"scale_attn_by_inverse_layer_idx\": true, \"tie_word_embeddings\": true, \"vocab_size\": 16}\n";

static void read_every_tensor(SafeTensorsFile *f, size_t size) {
    BpError err = {0};
    for (int i = 0; i < f->count; i++) {
        const SafeTensorInfo *t = &f->tensors[i];
        if (safetensors_find(f, t->name) != t) abort();
        uint64_t bytes = t->end - t->begin;
        if (bytes > size) abort();  /* the tiling check bounds every tensor by the file */
        int widen = t->dtype == ST_F32 || t->dtype == ST_F16 || t->dtype == ST_BF16;
        void *out = malloc(widen ? t->numel * sizeof(float) + 1 : bytes + 1);
        if (!out) abort();
        int rc = widen ? safetensors_read_f32(f, t, out, &err) : safetensors_read_raw(f, t, out, &err);
        if (rc != 0) abort();  /* a validated file reads whole */
        free(out);
    }
    char shape[160];
    if (f->count) safetensors_shape_str(f->tensors[0].shape, f->tensors[0].ndim, shape, sizeof shape);
    safetensors_metadata(f, "format");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int have_config;
    if (!have_config) {
        fuzz_write_file(1, "config.json", tiny_config, sizeof tiny_config - 1);
        have_config = 1;
    }
    const char *path = fuzz_write_file(0, "model.safetensors", data, size);
    SafeTensorsFile f;
    BpError err = {0};
    if (safetensors_open(&f, path, &err) != 0) {
        fuzz_check_error(&err);
        return 0;
    }
    read_every_tensor(&f, size);
    safetensors_close(&f);
    Backpack m;
    if (checkpoint_load(&m, fuzz_scratch_dir(), &err) != 0) {
        fuzz_check_error(&err);
        return 0;
    }
    backpack_free(&m);
    return 0;
}

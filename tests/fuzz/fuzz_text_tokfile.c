/* The token file (text/tokfile.h tokfile_open): the input is the file. An accepted file
 * holds exactly the ids its header promises, each below its vocabulary size. */
#include <stdlib.h>

#include "../../text/tokfile.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_write_file(0, "corpus.tok", data, size);
    TokFile tf;
    BpError err = {0};
    if (tokfile_open(&tf, path, &err) != 0) {
        fuzz_check_error(&err);
        return 0;
    }
    if (TOKFILE_HEADER_SIZE + tf.count * tf.id_width != size) abort();
    for (uint64_t i = 0; i < tf.count; i++)
        if (tokfile_get(&tf, i) >= tf.vocab_size) abort();
    tokfile_close(&tf);
    return 0;
}

/* The checkpoint's config.json (model/checkpoint.h checkpoint_read_config): the input is
 * the file. An accepted config must describe a model backpack_config_validate accepts. */
#include <stdlib.h>

#include "../../model/checkpoint.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fuzz_write_file(0, "config.json", data, size);
    BackpackConfig c;
    BpError err = {0};
    if (checkpoint_read_config(fuzz_scratch_dir(), &c, &err) != 0) {
        fuzz_check_error(&err);
        return 0;
    }
    if (backpack_config_validate(&c, &err) != 0) abort();
    backpack_num_param_entries(&c);
    return 0;
}

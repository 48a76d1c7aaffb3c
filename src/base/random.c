/* Random bytes from the kernel. */
#include "base/random.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

#include "base/error.h"

int random_bytes(void *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = getrandom((char *)buf + done, len - done, 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return LWM2MD_ERR_IO;
        }
        done += (size_t)n;
    }
    return LWM2MD_OK;
}

uint64_t random_u64(void)
{
    uint64_t value;
    if (random_bytes(&value, sizeof(value)) != LWM2MD_OK) {
        abort();
    }
    return value;
}

/*
 * libcurl, loaded at run time (module prefix curl_api_).
 *
 * libmgo must not have a link-time dependency on libcurl (a host could interpose on its
 * symbols, or load another copy), so libcurl.so.4 is opened with dlopen(RTLD_LOCAL, and
 * RTLD_DEEPBIND outside sanitizer builds) on first use and its functions are called through
 * the table below. <curl/curl.h> is included for its types and constants only; calling a
 * curl_* function directly would leave an undefined symbol that the ABI test rejects.
 *
 * The table is filled once per process (pthread_once), curl_global_init(CURL_GLOBAL_DEFAULT)
 * is called once, and the table is read-only afterwards: it is the library's only
 * process-wide state. The library is never unloaded.
 */
#ifndef MGO_TOPO_CURL_API_H
#define MGO_TOPO_CURL_API_H

#include <curl/curl.h>

struct curl_api {
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *handle);
    CURLcode (*easy_setopt)(CURL *handle, CURLoption option, ...);
    CURLcode (*easy_perform)(CURL *handle);
    CURLcode (*easy_getinfo)(CURL *handle, CURLINFO info, ...);
    const char *(*easy_strerror)(CURLcode code);
    void (*easy_reset)(CURL *handle);
    struct curl_slist *(*slist_append)(struct curl_slist *list, const char *text);
    void (*slist_free_all)(struct curl_slist *list);
    /* CURLVERSION_NOW's version_num of the loaded library, e.g. 0x075801 for 7.88.1. */
    unsigned int version_num;
};

/*
 * The function table of libcurl, loading it on the first call. Returns 0 and *ret (valid for
 * the life of the process), or -EAGAIN when libcurl.so.4 cannot be loaded or lacks a
 * function, or curl_global_init failed; curl_api_error() then says why. Thread-safe.
 */
int curl_api_get(const struct curl_api **ret);

/* Why curl_api_get() failed ("" when it has not failed). A static string, valid forever. */
const char *curl_api_error(void);

#endif

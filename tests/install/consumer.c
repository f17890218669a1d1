/* A program built against an installed mgo (CMake package or pkg-config). */
#include <mgo/mgo.h>
#include <stdio.h>
#include <string.h>

int main(void)
{
    mgo_plugin *p = NULL;
    char *out = NULL;
    size_t len = 0;
    const char *req = "{\"manifests\": \"apiVersion: multigres.com/v1alpha1\\nkind: CellTemplate\\n"
                      "metadata: {name: c}\\nspec: {multigateway: {replicas: 2}}\\n\"}";
    if (mgo_abi_version() != MGO_ABI_VERSION || mgo_open(NULL, &p) != MGO_OK)
        return 1;
    int32_t rc = mgo_validate(p, req, strlen(req), &out, &len);
    printf("%s\n", out ? out : "(none)");
    int ok = rc == MGO_OK && out && strstr(out, "\"valid\":true");
    mgo_free(out);
    mgo_close(p);
    return ok ? 0 : 1;
}

# mgo-kube's work queue, metrics registry and probe/metrics HTTP server (host-shims/kube/ctrl,
# mgo_kube_util): unit tests with an injected clock, threads, and loopback sockets as the client.
add_executable(kube_ctrl_unit ${CMAKE_CURRENT_SOURCE_DIR}/test_kube_ctrl_unit.c)
target_compile_options(kube_ctrl_unit PRIVATE ${MGO_WARNINGS})
target_compile_definitions(kube_ctrl_unit PRIVATE _POSIX_C_SOURCE=200809L)
target_link_libraries(kube_ctrl_unit PRIVATE mgo_kube_util PkgConfig::CMOCKA Threads::Threads)
add_test(NAME kube_ctrl_unit COMMAND kube_ctrl_unit)
set_tests_properties(kube_ctrl_unit PROPERTIES LABELS kube TIMEOUT 120)

# mgo-kube's certificate judge and issuer at chosen times (docs/abi.md "certificates" rules).
find_package(OpenSSL 3 REQUIRED)
add_executable(kube_certs_unit ${CMAKE_CURRENT_SOURCE_DIR}/test_kube_certs_unit.c
                               ${PROJECT_SOURCE_DIR}/host-shims/kube/ctrl/certs.c)
target_compile_options(kube_certs_unit PRIVATE ${MGO_WARNINGS})
target_compile_definitions(kube_certs_unit PRIVATE _POSIX_C_SOURCE=200809L _DEFAULT_SOURCE)
target_include_directories(kube_certs_unit PRIVATE ${PROJECT_SOURCE_DIR}/host-shims/kube/ctrl)
target_link_libraries(kube_certs_unit PRIVATE PkgConfig::CMOCKA OpenSSL::Crypto)
add_test(NAME kube_certs_unit COMMAND kube_certs_unit)
set_tests_properties(kube_certs_unit PROPERTIES LABELS kube TIMEOUT 120)

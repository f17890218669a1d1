find_package(OpenSSL 3 REQUIRED) # libcrypto: the pgBackRest certificates (certs.c)

# The controller binary: informers, workers, probes, metrics, leader election; libmgo is loaded at
# run time like every host does (host-shims/local/loader.c).
add_executable(mgo-kube
               ${CMAKE_CURRENT_SOURCE_DIR}/main.c ${CMAKE_CURRENT_SOURCE_DIR}/controller.c
               ${CMAKE_CURRENT_SOURCE_DIR}/informer.c ${CMAKE_CURRENT_SOURCE_DIR}/klog.c
               ${CMAKE_CURRENT_SOURCE_DIR}/kmetrics.c ${CMAKE_CURRENT_SOURCE_DIR}/certs.c
               ${PROJECT_SOURCE_DIR}/host-shims/local/loader.c)
target_compile_options(mgo-kube PRIVATE ${MGO_WARNINGS})
target_compile_definitions(mgo-kube PRIVATE _POSIX_C_SOURCE=200809L _DEFAULT_SOURCE
                           MGO_VERSION="${PROJECT_VERSION}"
                           MGO_DEFAULT_LIBDIR="${CMAKE_INSTALL_FULL_LIBDIR}")
target_include_directories(mgo-kube PRIVATE ${PROJECT_SOURCE_DIR}/include)
target_link_libraries(mgo-kube PRIVATE mgo_kube_util mgo_kube_leader mgo_kube_client
                      ${CMAKE_DL_LIBS} PkgConfig::JANSSON OpenSSL::Crypto Threads::Threads)
add_dependencies(mgo-kube mgo)
set_target_properties(mgo-kube PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)
install(TARGETS mgo-kube RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

/*
 * xmlvar.h - libxml2's two variables that docket reads, as functions.
 *
 * xmlFree (a variable holding the deallocator) and xmlParserMaxDepth are
 * data, and the docket binary, which loads libxml2 only when a command
 * first parses XML (cli/lazylib.c), cannot import data from a library it
 * does not link. libdocket.a reads them through these instead: util/xmlvar.c
 * for the tests and benchmarks, which link libxml2; cli/lazylib.c defines
 * the same two for the command, which the linker then takes in its place.
 */
#ifndef DK_UTIL_XMLVAR_H
#define DK_UTIL_XMLVAR_H

/* Frees what libxml2 allocated (xmlFree); NULL does nothing. */
void dk_xml_free(void *p);

/* How deep libxml2 lets elements nest (xmlParserMaxDepth). */
unsigned dk_xml_max_depth(void);

#endif

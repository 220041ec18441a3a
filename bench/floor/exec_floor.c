/*
 * exec_floor.c - the floor for a command-line process: a C program that
 * does nothing. Spawned from the same shell loop as `docket tick` and
 * `docket help`, it is what fork, exec, the dynamic loader (libc only) and
 * exit cost on this machine before any program does any work.
 */
int main(void)
{
	return 0;
}

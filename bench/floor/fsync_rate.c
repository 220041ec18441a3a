/*
 * fsync_rate.c - how many durable small writes this disk takes per second:
 * append a 4 KiB block to a file and fsync it, over and over.
 *
 * Usage: fsync_rate FILE COUNT
 * Prints one line: fsyncs per second. FILE is created or truncated and
 * left behind for the caller to remove.
 *
 * Every durable docket step ends in at least one fsync (SQLite's WAL
 * commit), so this is the ceiling of durable steps per second on one disk.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	char block[4096];
	long count, i;
	double t0, secs;
	int fd;

	if (argc != 3 || (count = strtol(argv[2], NULL, 10)) <= 0) {
		fprintf(stderr, "usage: fsync_rate FILE COUNT\n");
		return 2;
	}
	fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		perror(argv[1]);
		return 1;
	}
	memset(block, 'd', sizeof block);
	t0 = now_s();
	for (i = 0; i < count; i++) {
		if (write(fd, block, sizeof block) != (ssize_t)sizeof block || fsync(fd) != 0) {
			perror(argv[1]);
			close(fd);
			return 1;
		}
	}
	secs = now_s() - t0;
	close(fd);
	printf("%.0f\n", (double)count / secs);
	return 0;
}

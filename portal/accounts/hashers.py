"""The portal's password hasher: argon2id at the cost OWASP recommends, not Django's.

Why not Django's defaults (100 MiB, 2 passes, 8 lanes): on the 2-core web host one check
took 150 to 230 ms and used both cores, so the portal topped out at about 4.5 logins a
second — on a disaster morning, when every customer logs in at once to keep their
upgrade, logins queued for tens of seconds (issue 14). Eight lanes only make one hash
finish sooner on an idle machine; with several gunicorn workers hashing at once they fight
for the same two cores, and 100 MiB per check is 500 MiB for five workers.

OWASP's Password Storage Cheat Sheet asks for argon2id with at least 19 MiB of memory,
2 passes and 1 lane, and lists rows it deems equally strong (46 MiB with 1 pass, 12 MiB
with 3, 9 MiB with 4, 7 MiB with 5). We take its first row: about 21 ms per check here,
on one core, and 19 MiB per worker (bench/load.py prints the logins a second with each).
The 46 MiB row is more memory-hard but twice as slow here (44 ms); the lower-memory rows
are no faster. Every parameter is stored in the hash itself, so this
can be raised again later: hashes with other parameters are re-made at the user's next
successful login (Django's ``must_update``), and old hashes keep verifying meanwhile.
"""

from django.contrib.auth.hashers import Argon2PasswordHasher


class OwaspArgon2PasswordHasher(Argon2PasswordHasher):
    """argon2id, m = 19 MiB, t = 2, p = 1 (OWASP Password Storage Cheat Sheet).

    Same algorithm name ("argon2") and stored format as Django's hasher, so both read
    each other's hashes; only the parameters of new hashes differ.
    """

    memory_cost = 19 * 1024  # KiB
    time_cost = 2
    parallelism = 1

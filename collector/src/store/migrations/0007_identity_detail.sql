-- What client-go users append after the commit of their identity, without the '/':
-- kube-controller-manager's `/system:serviceaccount:kube-system:<controller>`. It was always in
-- `text`; identities stored before this migration keep NULL here.
ALTER TABLE identities ADD COLUMN detail TEXT;
